public import Logging
public import RedisClient
public import ServiceLifecycle
public import StampedeCache
import Synchronization
import Tracing

/// Settings of an ``LLMCache``.
public struct LLMCacheConfiguration: Sendable {
    /// The namespace used when a request names none (tenants get their own with ``LLMRequestOptions/namespace``).
    public var namespace: String
    /// Freshness, staleness, compute timeout (which also bounds each upstream call, retries included), lock TTL, hot keys.
    public var policy: CachePolicy
    /// How request keys are derived (prompt-template version, opt-in text normalisation).
    public var keyOptions: RequestKeyOptions
    /// Prices used to report money saved.
    public var prices: PriceTable
    /// Which requests and responses may be cached.
    public var cacheability: CacheabilityPolicy
    /// How often this process adds its counters to the fleet-wide accounting in Redis (10 ms – 1 h).
    public var accountingFlushInterval: Duration
    /// A tenant namespace without requests for this long is released (its notice channel is
    /// unsubscribed; it is created again on its next request). The default namespace is kept.
    /// At least 1 s.
    public var idleNamespaceRelease: Duration
    /// Semantic caching: on an exact miss, answer from a cached answer to a similar prompt in the
    /// same context (`nil`, the default: exact matches only). See ``SemanticConfiguration``.
    public var semantic: SemanticConfiguration?
    /// Metric labels for families of namespaces: a namespace starting with a key here is labelled
    /// with its value in every metric's `namespace` label (e.g. `["pt-": "pass-through"]` for
    /// per-key namespaces), so the number of metric series stays bounded however many namespaces
    /// come and go. Accounting in Redis stays per namespace.
    public var metricsNamespaceLabels: [String: String] = [:]
    /// An in-process near-cache for each namespace's exact answers (``NearCacheConfiguration``;
    /// `nil`, the default: every hit reads Redis). Each namespace in use holds its own, bounded by
    /// these limits, with its own two tracking connections per Redis node.
    public var nearCache: NearCacheConfiguration?

    /// The `namespace` label of `namespace`'s metrics (see ``metricsNamespaceLabels``).
    public func metricsLabel(for namespace: String) -> String {
        metricsNamespaceLabels.first { namespace.hasPrefix($0.key) }?.value ?? namespace
    }

    /// Creates a configuration. Default policy: fresh 1 h, stale 1 day, 60 s compute timeout, 90 s lock.
    public init(
        namespace: String = "llm",
        policy: CachePolicy = CachePolicy(),
        keyOptions: RequestKeyOptions = RequestKeyOptions(),
        prices: PriceTable = PriceTable(),
        cacheability: CacheabilityPolicy = CacheabilityPolicy(),
        accountingFlushInterval: Duration = .seconds(1),
        idleNamespaceRelease: Duration = .seconds(600),
        semantic: SemanticConfiguration? = nil
    ) {
        self.namespace = namespace
        self.policy = policy
        self.keyOptions = keyOptions
        self.prices = prices
        self.cacheability = cacheability
        self.accountingFlushInterval = accountingFlushInterval
        self.idleNamespaceRelease = idleNamespaceRelease
        self.semantic = semantic
    }

    /// Checks the intervals (the policy and namespace are checked by the ``StampedeCache`` they make).
    /// - Throws: ``CacheConfigurationError`` naming the setting.
    public func validate() throws(CacheConfigurationError) {
        guard accountingFlushInterval >= .milliseconds(10), accountingFlushInterval <= .seconds(3600) else {
            throw CacheConfigurationError(setting: "accountingFlushInterval", problem: "must be between 10 ms and 1 h, got \(accountingFlushInterval)")
        }
        try nearCache?.validate()
        guard idleNamespaceRelease >= .seconds(1) else {
            throw CacheConfigurationError(setting: "idleNamespaceRelease", problem: "must be at least 1 s, got \(idleNamespaceRelease)")
        }
        do {
            try semantic?.validate()
        } catch {
            throw CacheConfigurationError(setting: "semantic", problem: error.description)
        }
    }
}

/// Per-request cache controls, named as in HTTP caching and LiteLLM.
public struct LLMRequestOptions: Sendable, Hashable {
    /// The tenant namespace (default: the configuration's). Tenants never share answers.
    public var namespace: String?
    /// Skip the lookup and ask the upstream, but store the answer ("no-cache").
    public var noCache: Bool
    /// Don't store this answer ("no-store"); a fresh cached answer is still served.
    public var noStore: Bool
    /// How long this answer stays fresh (overrides the policy's `freshFor`).
    public var ttl: Duration?
    /// The most staleness this caller accepts (`nil`: anything within the stale window).
    public var maxStale: Duration?
    /// The most staleness this caller accepts in an answer served because the upstream call failed
    /// or took too long (HTTP's `stale-if-error`; `nil`: anything within the stale window; `.zero`:
    /// the failure reaches the caller instead).
    public var staleIfError: Duration?
    /// Use the semantic layer for this request (when configured); `false`: exact matches only.
    public var semantic: Bool
    /// This request's least similarity for a semantic match (instead of the configured threshold;
    /// values outside (0, 1] are refused).
    public var minSimilarity: Double?
    /// The upstream credential for this call instead of the client's own (pass-through). Answers
    /// are shared within a namespace, so give each key its own namespace (the proxy derives it
    /// from an HMAC of the key).
    public var upstreamAPIKey: UpstreamAPIKey?

    /// Creates options; the defaults change nothing.
    public init(
        namespace: String? = nil, noCache: Bool = false, noStore: Bool = false, ttl: Duration? = nil, maxStale: Duration? = nil,
        semantic: Bool = true, minSimilarity: Double? = nil, staleIfError: Duration? = nil, upstreamAPIKey: UpstreamAPIKey? = nil
    ) {
        self.staleIfError = staleIfError
        self.upstreamAPIKey = upstreamAPIKey
        self.namespace = namespace
        self.noCache = noCache
        self.noStore = noStore
        self.ttl = ttl
        self.maxStale = maxStale
        self.semantic = semantic
        self.minSimilarity = minSimilarity
    }
}

/// An answer and where it came from.
public struct LLMResult: Sendable, Hashable {
    /// The completion.
    public var completion: ChatCompletion
    /// Where it came from (fresh hit, stale hit, computed here, received from another worker, ...).
    public var source: CacheSource
    /// Its age by the Redis server's clock.
    public var age: Duration
    /// How much longer it stays fresh, by the Redis server's clock when it was read or stored
    /// (`.zero` when stale; `nil` when it is not stored).
    public var remainingFreshness: Duration? = nil
    /// The namespace it was looked up in.
    public var namespace: String
    /// The request's cache key (`nil` when the request bypassed the cache).
    public var key: RequestKey?
    /// Why the answer is not in the cache, when it was computed and not stored (not cacheable,
    /// `noStore`, a commit Redis refused, Redis unavailable). `nil` for answers that are cached.
    public var notCachedBecause: String?
    /// Whether this call made an upstream request itself (and so paid for it). `false` for every
    /// hit, for answers received from another worker (``CacheSource/receivedFromOtherWorker``), and
    /// for calls that joined a concurrent call in this process (``CacheSource/joinedInProcess``).
    /// Exactly one call per upstream request has `calledUpstream == true`.
    public var calledUpstream: Bool
    /// Set when the semantic layer answered: the similarity and key of the matched prompt. Its
    /// ``source`` is then `computed` (this worker produced the request's exact entry, by back-fill)
    /// and ``calledUpstream`` is `false`.
    public var semantic: SemanticMatch? = nil

    /// Where the answer came from as one label: `semantic_hit` / `semantic_wait` for semantic
    /// answers, else ``CacheSource/label`` (`fresh_hit`, `computed`, …).
    public var sourceLabel: String { semantic?.kind.rawValue ?? source.label }
}

/// Cached LLM calls for a fleet of workers: exactly one upstream call per distinct request (per
/// freshness period) across every process, however many workers ask at once.
///
/// ```swift
/// let llm = try LLMCache(redis: redis, upstream: OpenAIClient(configuration: .fromEnvironment()))
/// // in your ServiceGroup (or Hummingbird's Application(services:)): [redis, llm, ...]
/// let result = try await llm.complete(ChatRequest(model: "gpt-4o-mini", messages: [.user("Hello")]))
/// print(result.completion.content, result.source)
/// ```
///
/// It is a swift-service-lifecycle `Service`: ``run()`` does the background work of every tenant
/// namespace from one loop (accounting to Redis, hot-key counts, generation refresh, releasing
/// idle namespaces) and closes the cache on graceful shutdown. Calls work without `run()`, but the
/// fleet-wide accounting is then only written by ``fleetAccounting(namespaces:)`` and ``close()``.
public final class LLMCache: Sendable, Service {
    /// The configuration.
    public let configuration: LLMCacheConfiguration
    /// The Redis client.
    public let redis: RedisClient
    /// Where answers come from.
    public let upstream: any ChatCompletionUpstream
    let logger: Logger
    let caches: NamespaceCaches
    let accountant = Accountant()
    let closed = Atomic<Bool>(false)
    let runClaimed = Atomic<Bool>(false)
    let closeSignal = CloseSignal()
    let semanticLayer: SemanticLayer?
    /// The shared readers of other workers' live streams (one per stream in this process).
    let liveReaders: LiveStreamReaders
    /// Tells this instance's ``PreparedChatRequest``s from another's.
    let instanceID: UInt64
    private static let instances = Atomic<UInt64>(0)

    /// Creates the cache and the default namespace's ``StampedeCache``. Synchronous and free of I/O;
    /// run it (``run()``, or in a `ServiceGroup`) so counters reach Redis and hot keys are promoted.
    /// - Throws: ``CacheConfigurationError`` for an invalid policy, namespace or interval.
    public init(
        redis: RedisClient,
        upstream: any ChatCompletionUpstream,
        configuration: LLMCacheConfiguration = LLMCacheConfiguration(),
        logger: Logger = Logger(label: "LLMCache")
    ) throws(CacheConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.redis = redis
        self.upstream = upstream
        self.logger = logger
        self.caches = try NamespaceCaches(
            redis: redis, policy: configuration.policy, defaultNamespace: configuration.namespace, logger: logger,
            metricsLabel: { [configuration] in configuration.metricsLabel(for: $0) },
            nearCache: configuration.nearCache
        )
        self.semanticLayer = configuration.semantic.map { SemanticLayer(configuration: $0, redis: redis, logger: logger) }
        self.liveReaders = LiveStreamReaders(redis: redis, logger: logger)
        self.instanceID = Self.instances.add(1, ordering: .relaxed).newValue
    }

    /// Derives what this cache needs from `request` before answering it: its key under this
    /// cache's ``RequestKeyOptions`` and whether ``CacheabilityPolicy`` lets it be cached. Pure and
    /// synchronous; keep the result to answer the same request again without recomputing the key.
    public func prepare(_ request: ChatRequest) -> PreparedChatRequest {
        if let reason = configuration.cacheability.reasonNotToCache(request) {
            return PreparedChatRequest(request: request, key: nil, notCachedBecause: reason, preparedBy: instanceID)
        }
        return PreparedChatRequest(request: request, key: request.cacheKey(options: configuration.keyOptions), notCachedBecause: nil, preparedBy: instanceID)
    }

    /// `prepared` if this instance prepared it, else prepared again here.
    func preparedHere(_ prepared: PreparedChatRequest) -> PreparedChatRequest {
        prepared.preparedBy == instanceID ? prepared : prepare(prepared.request)
    }

    /// The ``StampedeCache`` of a namespace (created on first use; released after
    /// ``LLMCacheConfiguration/idleNamespaceRelease`` without requests).
    public func cache(for namespace: String) throws -> StampedeCache {
        try caches.cache(for: namespace)
    }

    /// Answers `request` from the cache, from another worker's computation, or by calling the upstream once.
    ///
    /// - Throws: ``UpstreamError`` when this worker called the upstream and it failed, ``CacheError``
    ///   (for example `computationFailedElsewhere` when another worker's call failed: not retried
    ///   here, to spare the upstream).
    public func complete(_ request: ChatRequest, options: LLMRequestOptions = LLMRequestOptions()) async throws -> LLMResult {
        try await run(prepare(request), options: options, onDelta: nil)
    }

    /// Answers a request prepared with ``prepare(_:)``, as ``complete(_:options:)-(ChatRequest,_)``
    /// does, without deriving its key again.
    public func complete(_ prepared: PreparedChatRequest, options: LLMRequestOptions = LLMRequestOptions()) async throws -> LLMResult {
        try await run(preparedHere(prepared), options: options, onDelta: nil)
    }

    /// Streams the answer to `request`: when this worker calls the upstream, pieces arrive as the
    /// upstream sends them, and are appended to a short-lived Redis Stream for the callers in other
    /// processes waiting on this computation; a caller waiting on another worker's streamed
    /// computation receives its pieces live from that stream (from its start), then the rest of
    /// the final answer; a hit arrives as one piece. Only a complete stream (ending in `[DONE]`) is cached. The last event
    /// is ``ChatStreamEvent/completed(_:)``.
    public func stream(_ request: ChatRequest, options: LLMRequestOptions = LLMRequestOptions()) -> AsyncThrowingStream<ChatStreamEvent, any Error> {
        stream(prepare(request), options: options)
    }

    /// Streams the answer to a request prepared with ``prepare(_:)``, as
    /// ``stream(_:options:)-(ChatRequest,_)`` does, without deriving its key again.
    public func stream(_ prepared: PreparedChatRequest, options: LLMRequestOptions = LLMRequestOptions()) -> AsyncThrowingStream<ChatStreamEvent, any Error> {
        let prepared = preparedHere(prepared)
        let (stream, continuation) = AsyncThrowingStream<ChatStreamEvent, any Error>.makeStream()
        let streamed = Atomic<Bool>(false)
        let follower = LiveStreamFollower(readers: liveReaders) { piece in continuation.yield(Self.event(piece)) }
        let task = Task {
            do {
                let result = try await StampedeCache.$followObserver.withValue(follower.observer) {
                    try await self.run(prepared, options: options) { piece in
                        guard follower.yieldToOwnStream() else { return }
                        streamed.store(true, ordering: .relaxed)
                        continuation.yield(Self.event(piece))
                    }
                }
                // Text already sent live from another worker's computation (followed while waiting).
                let followed = await follower.stop()
                if streamed.load(ordering: .relaxed) && result.calledUpstream {
                    // Streamed by this call's own upstream request.
                } else {
                    // The rest of the answer after what was followed live (all of it for a hit). Text
                    // already sent that does not begin this answer (the computation followed live
                    // failed and another answered) means the stream cannot be completed.
                    let completion = result.completion
                    guard let reasoning = Self.rest(of: completion.reasoningContent ?? "", after: followed.reasoning),
                          let content = Self.rest(of: completion.content, after: followed.content)
                    else { throw UpstreamError.streamCutOff(receivedCharacters: followed.content.count + followed.reasoning.count) }
                    if !reasoning.isEmpty { continuation.yield(.reasoning(reasoning)) }
                    if !content.isEmpty || followed.isEmpty { continuation.yield(.delta(content)) }
                }
                continuation.yield(.completed(result))
                continuation.finish()
            } catch {
                _ = await follower.stop()
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private static func event(_ piece: ChatDelta) -> ChatStreamEvent {
        switch piece {
        case .content(let text): return .delta(text)
        case .reasoning(let text): return .reasoning(text)
        }
    }

    /// `text` after `sent`, or `nil` when `sent` does not begin it.
    private static func rest(of text: String, after sent: String) -> String? {
        guard text.hasPrefix(sent) else { return nil }
        return String(text.dropFirst(sent.count))
    }

    /// The stored answer to `request` if it is fresh now, by exact key, without calling the
    /// upstream, waiting for another worker or refreshing anything (HTTP's `only-if-cached`).
    /// Uses `options.namespace` only. Counted as a fresh hit when found.
    /// - Returns: `nil` when no fresh answer is stored, or when the request is not cacheable.
    public func freshAnswer(_ request: ChatRequest, options: LLMRequestOptions = LLMRequestOptions()) async throws -> LLMResult? {
        try await freshAnswer(prepare(request), options: options)
    }

    /// The stored answer to a request prepared with ``prepare(_:)`` if it is fresh now, as
    /// ``freshAnswer(_:options:)-(ChatRequest,_)`` finds it.
    public func freshAnswer(_ prepared: PreparedChatRequest, options: LLMRequestOptions = LLMRequestOptions()) async throws -> LLMResult? {
        try checkOpen()
        let prepared = preparedHere(prepared)
        let request = prepared.request
        let namespace = options.namespace ?? configuration.namespace
        let cache = try caches.cache(for: namespace)
        defer { caches.touch(namespace) }
        guard let key = prepared.key else { return nil }
        guard let found = try await cache.freshValue(for: key.cacheKey, as: ChatCompletion.self) else { return nil }
        account(namespace: namespace, model: request.model, source: found.source, completion: found.value, calledUpstream: false, coalesced: false, semantic: nil, match: nil)
        var answer = LLMResult(completion: found.value, source: found.source, age: found.age, namespace: namespace, key: key, notCachedBecause: nil, calledUpstream: false)
        answer.remainingFreshness = found.remainingFreshness
        return answer
    }

    /// This process's accounting.
    public var accounting: AccountingSnapshot { accountant.snapshot }

    /// The whole fleet's accounting for `namespaces`, as every worker flushed it to Redis (once a second).
    public func fleetAccounting(namespaces: [String]) async throws -> AccountingSnapshot {
        await flushAccounting()
        return try await Self.fleetAccounting(redis: redis, namespaces: namespaces)
    }

    /// Reads the fleet-wide accounting of `namespaces` from Redis (used by `stampede stats`).
    public static func fleetAccounting(redis: RedisClient, namespaces: [String]) async throws -> AccountingSnapshot {
        var entries: [AccountingSnapshot.Key: ModelAccounting] = [:]
        var invalid: [String] = []
        for namespace in namespaces {
            let reply = try await redis.send("HGETALL", RedisArgument(statsKey(namespace)))
            let items = reply.array ?? []
            var index = 0
            while index + 1 < items.count {
                defer { index += 2 }
                guard let field = items[index].string, let separator = field.lastIndex(of: "|") else { continue }
                let text = items[index + 1].string ?? ""
                let key = AccountingSnapshot.Key(namespace: namespace, model: String(field[..<separator]))
                var counters = entries[key] ?? ModelAccounting()
                if let value = Double(text), counters.set(field: String(field[field.index(after: separator)...]), value: value) {
                    entries[key] = counters
                } else {
                    invalid.append("\(statsKey(namespace)) \(field) = \(text.prefix(40))")
                }
            }
        }
        var snapshot = AccountingSnapshot(entries: entries)
        snapshot.invalidFields = invalid
        return snapshot
    }

    static func statsKey(_ namespace: String) -> String { "stampede:stats:{\(namespace)}" }


    // MARK: The call

    /// One request, traced as an `llm.request` span (attributes: `gen_ai.request.model`,
    /// `stampede.namespace`, `stampede.source`, `llm.called_upstream`; never the prompt or answer).
    private func run(_ prepared: PreparedChatRequest, options: LLMRequestOptions, onDelta: (@Sendable (ChatDelta) -> Void)?) async throws -> LLMResult {
        guard TracingState.isActive else { return try await untracedRun(prepared, options: options, onDelta: onDelta) }
        let request = prepared.request
        return try await withSpan("llm.request", ofKind: .internal) { span in
            if span.isRecording {
                span.attributes["gen_ai.request.model"] = request.model
                span.attributes["gen_ai.operation.name"] = "chat"
                span.attributes["llm.stream"] = onDelta != nil
                span.attributes["stampede.namespace"] = options.namespace ?? configuration.namespace
            }
            let result = try await untracedRun(prepared, options: options, onDelta: onDelta)
            if span.isRecording {
                span.attributes["stampede.source"] = result.sourceLabel
                span.attributes["llm.called_upstream"] = result.calledUpstream
            }
            return result
        }
    }

    private func untracedRun(_ prepared: PreparedChatRequest, options: LLMRequestOptions, onDelta: (@Sendable (ChatDelta) -> Void)?) async throws -> LLMResult {
        try checkOpen()
        let request = prepared.request
        let namespace = options.namespace ?? configuration.namespace
        let cache = try caches.cache(for: namespace)
        defer { caches.touch(namespace) }
        let model = request.model
        guard let key = prepared.key else {
            let reason = prepared.notCachedBecause ?? "not cacheable"
            return try await UpstreamAPIKey.$current.withValue(options.upstreamAPIKey ?? UpstreamAPIKey.current) {
                try await direct(request, namespace: namespace, key: nil, reason: reason, onDelta: onDelta)
            }
        }
        let cacheOptions = CacheRequestOptions(
            maxStale: options.maxStale, freshFor: options.ttl, forceRefresh: options.noCache, noStore: options.noStore, staleIfError: options.staleIfError
        )
        let timeout = configuration.policy.computeTimeout
        let cacheability = configuration.cacheability
        let upstream = self.upstream
        let redis = self.redis
        let logger = self.logger
        let liveLifetime = configuration.policy.lockTTL + .seconds(30)
        let credential = options.upstreamAPIKey
        let callUpstream: @Sendable () async throws -> Computed<ChatCompletion> = {
            try await UpstreamAPIKey.$current.withValue(credential ?? UpstreamAPIKey.current) {
                try await withSpan("llm.upstream", ofKind: .client) { span in
                    if span.isRecording {
                        span.attributes["gen_ai.request.model"] = request.model
                        span.attributes["gen_ai.operation.name"] = "chat"
                        if let token = StampedeCache.computation?.fenceToken { span.attributes["stampede.fence_token"] = token }
                    }
                    let deadline = ContinuousClock.now + timeout
                    let completion: ChatCompletion
                    if let onDelta {
                        // Streamed here: the pieces also go to this computation's live stream, for the
                        // callers in other processes waiting on it (LiveStreamFollower).
                        let writer = StampedeCache.computation?.liveStreamKey.map { LiveStreamWriter(redis: redis, key: $0, lifetime: liveLifetime, logger: logger) }
                        do {
                            completion = try await upstream.stream(request, deadline: deadline) { piece in
                                onDelta(piece)
                                writer?.append(piece)
                            }
                        } catch {
                            await writer?.finish(error: "\(error)")
                            throw error
                        }
                        await writer?.finish(error: nil)
                    } else {
                        completion = try await upstream.complete(request, deadline: deadline)
                    }
                    if span.isRecording {
                        span.attributes["gen_ai.response.model"] = completion.model
                        if let usage = completion.usage {
                            span.attributes["gen_ai.usage.input_tokens"] = usage.promptTokens
                            span.attributes["gen_ai.usage.output_tokens"] = usage.completionTokens
                        }
                    }
                    // Paid for but not cacheable (truncated, tool calls, ...): the callers waiting for
                    // this computation still receive it; nothing is stored.
                    if let reason = cacheability.reasonNotToCache(completion, for: request) {
                        return .deliverWithoutStoring(completion, reason: reason)
                    }
                    return .store(completion)
                }
            }
        }
        let semanticStep = try semanticStep(for: request, key: key, options: options, namespace: namespace, cache: cache, callUpstream: callUpstream)
        do {
            let result = try await cache.value(for: key.cacheKey, as: ChatCompletion.self, options: cacheOptions) { () async throws -> Computed<ChatCompletion> in
                if let semanticStep, let answer = try await semanticStep.run() { return answer }
                return try await callUpstream()
            }
            let match = await semanticStep?.finish(result)
            let calledUpstream = result.computedHere && (semanticStep?.servedWithoutUpstream != true)
            account(namespace: namespace, model: model, source: result.source, completion: result.value, calledUpstream: calledUpstream, coalesced: result.coalesced, semantic: semanticStep?.counts, match: match)
            var answer = LLMResult(completion: result.value, source: result.source, age: result.age, namespace: namespace, key: key, notCachedBecause: result.notCachedBecause, calledUpstream: calledUpstream)
            answer.semantic = match
            answer.remainingFreshness = result.remainingFreshness
            return answer
        } catch {
            await semanticStep?.abandon()
            accountant.record(namespace: namespace, label: configuration.metricsLabel(for: namespace), model: model, ModelAccounting(requests: 1, failures: 1))
            throw error
        }
    }

    private func direct(_ request: ChatRequest, namespace: String, key: RequestKey?, reason: String, onDelta: (@Sendable (ChatDelta) -> Void)?) async throws -> LLMResult {
        let deadline = ContinuousClock.now + configuration.policy.computeTimeout
        do {
            let completion: ChatCompletion
            if let onDelta {
                completion = try await upstream.stream(request, deadline: deadline, onDelta: onDelta)
            } else {
                completion = try await upstream.complete(request, deadline: deadline)
            }
            account(namespace: namespace, model: request.model, source: .computedNotStored, completion: completion, calledUpstream: true, coalesced: false, semantic: nil, match: nil)
            return LLMResult(completion: completion, source: .computedNotStored, age: .zero, namespace: namespace, key: key, notCachedBecause: reason, calledUpstream: true)
        } catch {
            accountant.record(namespace: namespace, label: configuration.metricsLabel(for: namespace), model: request.model, ModelAccounting(requests: 1, upstreamCalls: 1, failures: 1))
            throw error
        }
    }

    private func account(
        namespace: String, model: String, source: CacheSource, completion: ChatCompletion, calledUpstream: Bool, coalesced: Bool,
        semantic: SemanticLayer.Counts?, match: SemanticMatch?
    ) {
        var change = ModelAccounting(requests: 1)
        if calledUpstream {
            change.upstreamCalls = 1
        } else if let match {
            change.semanticHits = 1
            if match.kind == .waitedForSimilarComputation { change.semanticWaits = 1 }
            if let usage = completion.usage {
                change.semanticTokensSaved = usage.totalTokens
                change.semanticMoneySaved = configuration.prices.cost(of: usage, model: model)
            }
        } else {
            switch source {
            case .freshHit, .freshHitNear, .freshHitEarlyRefresh: change.freshHits = 1
            case .staleHit, .staleAfterFailure: change.staleHits = 1
            default: change.receivedFromOtherWorkers = 1
            }
            if let usage = completion.usage {
                change.promptTokensServedFromCache = usage.promptTokens
                change.completionTokensServedFromCache = usage.completionTokens
                change.moneySaved = configuration.prices.cost(of: usage, model: model)
            }
        }
        if let semantic {
            change.semanticNearMisses = semantic.nearMiss ? 1 : 0
            change.semanticGuardRejections = semantic.guardRejections
            change.semanticSkipped = semantic.skipped ? 1 : 0
            change.embeddingsComputed = semantic.embeddingComputed ? 1 : 0
            change.embeddingTokens = semantic.embeddingTokens
            if let embeddingModel = configuration.semantic?.embeddings.model {
                change.embeddingCost = configuration.prices.cost(of: .init(promptTokens: semantic.embeddingTokens, completionTokens: 0), model: embeddingModel)
            }
        }
        accountant.record(namespace: namespace, label: configuration.metricsLabel(for: namespace), model: model, change)
    }

    /// Adds this process's new counters to the fleet-wide hash in Redis (`HINCRBYFLOAT`, pipelined).
    func flushAccounting() async {
        let batch = accountant.drainUnflushed()
        guard !batch.isEmpty else { return }
        var commands: [RedisCommand] = []
        for (key, counters) in batch {
            for (field, value) in counters.fields where value != 0 {
                commands.append(RedisCommand("HINCRBYFLOAT", RedisArgument(Self.statsKey(key.namespace)), RedisArgument("\(key.model)|\(field)"), RedisArgument(value)))
            }
        }
        guard !commands.isEmpty else { return }
        do {
            _ = try await redis.send(pipeline: commands)
        } catch {
            accountant.restore(batch)
            logger.debug("accounting not flushed; will retry", metadata: ["error": "\(error)"])
        }
    }
}

extension ModelAccounting {
    init(requests: Int, upstreamCalls: Int = 0, failures: Int = 0) {
        self.init()
        self.requests = requests
        self.upstreamCalls = upstreamCalls
        self.failures = failures
    }
}
