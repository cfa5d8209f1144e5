public import Logging
public import RedisClient
public import StampedeCache

extension LLMCache {
    /// The semantic step for `request`, or `nil` when the request is looked up by exact key only:
    /// no semantic configuration, `semantic: false` or `noCache` in the options, no user text, or
    /// a personal or time-sensitive prompt (``SemanticCacheability``).
    /// - Throws: ``SemanticError/invalidSetting(setting:problem:)`` for a `minSimilarity` outside (0, 1].
    func semanticStep(
        for request: ChatRequest, key: RequestKey, options: LLMRequestOptions, namespace: String, cache: StampedeCache,
        callUpstream: @escaping @Sendable () async throws -> Computed<ChatCompletion>
    ) throws -> SemanticStep? {
        guard let layer = semanticLayer, options.semantic, !options.noCache else { return nil }
        if let minimum = options.minSimilarity, !(minimum.isFinite && minimum > 0 && minimum <= 1) {
            throw SemanticError.invalidSetting(setting: "minSimilarity", problem: "must be in (0, 1], got \(minimum)")
        }
        guard let (text, messageIndices) = request.semanticText(layer.configuration.text), layer.configuration.cacheability.reasonToSkip(text) == nil else { return nil }
        return SemanticStep(
            layer: layer, text: text, messageIndices: messageIndices, request: request, key: key, keyOptions: configuration.keyOptions,
            namespace: namespace, cache: cache, threshold: options.minSimilarity ?? layer.configuration.threshold,
            freshFor: options.ttl ?? configuration.policy.freshFor, pendingTTL: configuration.policy.lockTTL, callUpstream: callUpstream
        )
    }

    /// Creates the semantic index when missing and checks it and the embedding model against the
    /// configuration (one embedding call). Call it at startup to fail early; requests work without it.
    /// - Throws: ``SemanticError`` (no vector search, another schema, a dimension mismatch), or the
    ///   embeddings upstream's ``UpstreamError``.
    public func prepareSemanticIndex() async throws {
        guard let layer = semanticLayer else { return }
        try await layer.index.prepare()
        _ = try await layer.embedder.embed("StampedeCache dimension check", deadline: .now + layer.configuration.lookupTimeout)
    }

    /// The semantic index's name, document count and schema (`nil` when semantic caching is off or
    /// the index does not exist yet).
    public func semanticIndexInfo() async throws -> SemanticIndexInfo? {
        guard let layer = semanticLayer else { return nil }
        return try await layer.index.info()
    }

    /// Drops the semantic index and its documents (the next semantic request creates it again).
    public func dropSemanticIndex() async throws {
        guard let layer = semanticLayer else { return }
        try await layer.index.drop(deleteDocuments: true)
    }

    /// Removes `request`'s cached answer: its exact entry and its semantic document, so neither it
    /// nor a paraphrase of it is answered from the old answer. Returns whether an exact entry existed.
    @discardableResult
    public func invalidate(_ request: ChatRequest, namespace: String? = nil) async throws -> Bool {
        let namespace = namespace ?? configuration.namespace
        let cache = try caches.cache(for: namespace)
        let key = request.cacheKey(options: configuration.keyOptions)
        if let layer = semanticLayer {
            let generation = await cache.generationForKeys()
            let documentKey = layer.documentKey(namespace: namespace, generation: generation, cacheKey: key.cacheKey)
            try await layer.index.remove(documentKeys: [documentKey, SemanticLayer.pendingKey(documentKey: documentKey)])
        }
        return try await cache.invalidate(key: key.cacheKey)
    }
}

extension LLMCache {
    /// Every StampedeCache semantic index on `redis` whose name starts with `prefix` (default
    /// ``SemanticConfiguration/indexName``'s default), with its documents and schema.
    /// - Throws: ``SemanticError/vectorSearchUnavailable(_:)`` when Redis has no `FT.*` commands.
    public static func semanticIndexes(redis: RedisClient, prefix: String = "stampede-semantic") async throws -> [SemanticIndexInfo] {
        let reply = try await redis.send(pipeline: [RedisCommand("FT._LIST")]).first ?? .null
        if case .error(let message) = reply { throw RediSearchIndex.translated(RedisError(code: .server, message: message)) }
        var result: [SemanticIndexInfo] = []
        for name in (reply.array ?? []).compactMap(\.string).sorted() {
            guard let parsed = RediSearchIndex.parse(name: name), parsed.prefix == prefix else { continue }
            let index = RediSearchIndex(redis: redis, prefix: parsed.prefix, dimensions: parsed.dimensions, logger: Logger(label: "LLMCache"))
            if let info = try await index.info() { result.append(info) }
        }
        return result
    }

    /// Drops the semantic index `name` (as listed by ``semanticIndexes(redis:prefix:)``) and its documents.
    /// - Throws: ``SemanticError/invalidSetting(setting:problem:)`` for a name that is not a StampedeCache index.
    public static func dropSemanticIndex(redis: RedisClient, name: String) async throws {
        guard let parsed = RediSearchIndex.parse(name: name) else {
            throw SemanticError.invalidSetting(setting: "index name", problem: "'\(name)' is not a StampedeCache semantic index (<prefix>-\(RediSearchIndex.schemaVersion)-<dimensions>)")
        }
        try await RediSearchIndex(redis: redis, prefix: parsed.prefix, dimensions: parsed.dimensions, logger: Logger(label: "LLMCache")).drop(deleteDocuments: true)
    }
}

extension LLMCache {
    /// Removes the semantic documents (done and pending) of the exact cache key `cacheKey` of
    /// `namespace` at `generation` from every StampedeCache semantic index on `redis`, so no
    /// paraphrase is answered from that entry's answer any more. Returns how many keys were deleted;
    /// 0 on a Redis without vector search.
    @discardableResult
    public static func removeSemanticDocuments(redis: RedisClient, namespace: String, generation: Int64, cacheKey: String) async throws -> Int {
        let reply = try await redis.send(pipeline: [RedisCommand("FT._LIST")]).first ?? .null
        if case .error = reply { return 0 }  // no vector search: no documents
        var keys: [RedisArgument] = []
        for name in (reply.array ?? []).compactMap(\.string) {
            guard let parsed = RediSearchIndex.parse(name: name) else { continue }
            let index = RediSearchIndex(redis: redis, prefix: parsed.prefix, dimensions: parsed.dimensions, logger: Logger(label: "LLMCache"))
            let documentKey = SemanticLayer.documentKey(prefix: index.documentPrefix, namespace: namespace, generation: generation, cacheKey: cacheKey)
            keys.append(RedisArgument(documentKey))
            keys.append(RedisArgument(SemanticLayer.pendingKey(documentKey: documentKey)))
        }
        guard !keys.isEmpty else { return 0 }
        return Int(clamping: try await redis.send(RedisCommand("DEL", keys)).int ?? 0)
    }
}
