package import Logging
package import RedisClient
import Synchronization

/// ``SemanticIndex`` on the RediSearch query API: an HNSW cosine index over the hashes under its
/// own key prefix `stampede:sem:<index name>:`, a TAG field `ctx` (the context hash, prefixed with
/// `p` for pending documents) and a TAG field `state` (`pending`/`done`, returned, not filtered on). Each index has its own prefix, so indexes of other names or dimensions
/// never index (or, on `FT.DROPINDEX … DD`, delete) each other's documents.
///
/// - Name: `<prefix>-v1-<dimensions>`: the schema version and dimension are in the name, so a
///   new schema or model size makes a new index instead of colliding with the old one.
/// - KNN (`=>[KNN k @vec $B EF_RUNTIME n AS dist]`), not `VECTOR_RANGE`: on HNSW a range query can
///   miss an exact self-match, KNN finds it.
/// - An index that disappears (FLUSHALL, a restart without persistence) is created again on the
///   next use, once per failure.
package final class RediSearchIndex: SemanticIndex {
    static let schemaVersion = "v1"
    /// The key prefix of this index's documents.
    package let documentPrefix: String

    let redis: RedisClient
    package let name: String
    let dimensions: Int
    let logger: Logger
    private let prepared = Atomic<Bool>(false)

    package init(redis: RedisClient, prefix: String, dimensions: Int, logger: Logger) {
        self.redis = redis
        self.name = "\(prefix)-\(Self.schemaVersion)-\(dimensions)"
        self.documentPrefix = "stampede:sem:\(name):"
        self.dimensions = dimensions
        self.logger = logger
    }

    package func prepare() async throws {
        if prepared.load(ordering: .acquiring) { return }
        if try await redis.isCluster() {
            // FT.* on open-source Redis Cluster sees one shard only (a coordinator is needed to search
            // across shards), so lookups would silently miss most documents.
            throw SemanticError.vectorSearchUnavailable("this Redis is a Redis Cluster: RediSearch on open-source Cluster searches one shard only (a cross-shard search needs the coordinator of Redis Enterprise or Redis Cloud), so the semantic layer does not run on it; exact caching works. Point the semantic layer at a standalone Redis 8 (or Redis Stack) instead")
        }
        if let existing = try await info() {
            guard existing.dimensions == dimensions else {
                throw SemanticError.schemaMismatch(index: name, problem: "its vectors have \(existing.dimensions) dimensions, not \(dimensions)")
            }
            guard existing.metric.uppercased() == "COSINE" else {
                throw SemanticError.schemaMismatch(index: name, problem: "its distance metric is \(existing.metric), not COSINE")
            }
        } else {
            let create = RedisCommand("FT.CREATE", [
                RedisArgument(name), "ON", "HASH", "PREFIX", "1", RedisArgument(documentPrefix),
                "SCHEMA", "ctx", "TAG", "state", "TAG",
                "vec", "VECTOR", "HNSW", "10", "TYPE", "FLOAT32", "DIM", RedisArgument(dimensions),
                "DISTANCE_METRIC", "COSINE", "M", "16", "EF_CONSTRUCTION", "200",
            ])
            // A pipeline keeps an error reply as a value instead of throwing it.
            let reply = try await redis.send(pipeline: [create])
            if case .error(let message) = reply.first {
                // "Index already exists": another worker created it first.
                if !message.lowercased().contains("already exists") { throw Self.translated(RedisError(code: .server, message: message)) }
            } else {
                logger.info("created the semantic index", metadata: ["index": "\(name)"])
            }
        }
        prepared.store(true, ordering: .releasing)
    }

    package func registerPending(
        _ document: SemanticDocument, counter: String, ttl: Duration, k: Int, pendingK: Int, efRuntime: Int
    ) async throws -> (sequence: Int64, neighbors: [SemanticNeighbor]) {
        try await prepare()
        let register = SemanticRegister(counter: counter, document: document, ttl: ttl)
        let done = searchCommand(document.vector, context: document.context, state: "done", k: k, efRuntime: efRuntime)
        let pending = searchCommand(document.vector, context: document.context, state: "pending", k: pendingK, efRuntime: efRuntime)
        var replies = try await redis.send(pipeline: [register.evalSHACommand, done, pending])
        if case .error(let message) = replies.first, message.hasPrefix("NOSCRIPT") {
            // After a restart, failover or SCRIPT FLUSH: load it and send the round trip again.
            try await redis.load(SemanticRegister.script)
            replies = try await redis.send(pipeline: [register.evalSHACommand, done, pending])
        }
        guard replies.count == 3 else { throw RedisError(code: .protocolError, message: "\(replies.count) replies to a pipeline of 3") }
        if case .error(let message) = replies[0] { throw RedisError(code: .server, message: message) }
        let sequence = try register.decode(replies[0])
        if case .error(let message) = replies[1], Self.isMissingIndex(message) {
            // The index vanished (FLUSHALL, restart): create it again; the hash written above is
            // indexed by the new index's scan.
            prepared.store(false, ordering: .releasing)
            try await prepare()
            let again = try await redis.send(pipeline: [done, pending])
            guard again.count == 2 else { throw RedisError(code: .protocolError, message: "\(again.count) replies to a pipeline of 2") }
            return (sequence, try Self.neighbors(again[0]) + Self.neighbors(again[1]))
        }
        return (sequence, try Self.neighbors(replies[1]) + Self.neighbors(replies[2]))
    }

    package func nearest(to vector: [Float], context: String, k: Int, efRuntime: Int) async throws -> [SemanticNeighbor] {
        try await prepare()
        let command = searchCommand(vector, context: context, state: "done", k: k, efRuntime: efRuntime)
        var reply = try await redis.send(pipeline: [command]).first ?? .null
        if case .error(let message) = reply, Self.isMissingIndex(message) {
            prepared.store(false, ordering: .releasing)
            try await prepare()
            reply = try await redis.send(pipeline: [command]).first ?? .null
        }
        return try Self.neighbors(reply)
    }

    package func complete(_ document: SemanticDocument, pendingKey: String, answer: String, freshUntilMillis: Int64) async throws {
        let replies = try await redis.send(pipeline: [
            RedisCommand("HSET", [
                RedisArgument(document.key), "ctx", RedisArgument(Self.tag(context: document.context, pending: false)), "state", "done",
                "vec", RedisArgument(bytes: VectorBytes.encode(document.vector)), "text", RedisArgument(document.text),
                "key", RedisArgument(document.cacheKey), "seq", RedisArgument(document.sequence), "answer", RedisArgument(answer),
            ]),
            RedisCommand("PEXPIREAT", RedisArgument(document.key), RedisArgument(freshUntilMillis)),
            RedisCommand("DEL", RedisArgument(pendingKey)),
        ])
        for reply in replies {
            if case .error(let message) = reply { throw RedisError(code: .server, message: message) }
        }
    }

    package func remove(documentKeys: [String]) async throws {
        guard !documentKeys.isEmpty else { return }
        try await redis.send(RedisCommand("DEL", documentKeys.map { RedisArgument($0) }))
    }

    package func remainingLifetime(documentKey: String) async throws -> Duration? {
        let reply = try await redis.send("PTTL", RedisArgument(documentKey))
        guard let milliseconds = reply.int, milliseconds > 0 else { return nil }
        return .milliseconds(milliseconds)
    }

    package func info() async throws -> SemanticIndexInfo? {
        let reply = try await redis.send(pipeline: [RedisCommand("FT.INFO", RedisArgument(name))]).first ?? .null
        if case .error(let message) = reply {
            if Self.isMissingIndex(message) { return nil }
            throw Self.translated(RedisError(code: .server, message: message))
        }
        let fields = Self.pairs(reply)
        var info = SemanticIndexInfo(name: name, documents: Int(fields["num_docs"]?.int ?? 0), dimensions: 0, metric: "", algorithm: "", percentIndexed: 0)
        if let percent = fields["percent_indexed"]?.string, let value = Double(percent), value.isFinite { info.percentIndexed = value * 100 }
        for attribute in fields["attributes"]?.array ?? [] {
            let properties = Self.pairs(attribute)
            guard properties["attribute"]?.string == "vec" else { continue }
            let dimension = properties["dim"]?.int ?? 0
            info.dimensions = Int(clamping: max(0, dimension))
            info.metric = properties["distance_metric"]?.string ?? ""
            info.algorithm = properties["algorithm"]?.string ?? ""
        }
        return info
    }

    package func drop(deleteDocuments: Bool) async throws {
        prepared.store(false, ordering: .releasing)
        let reply = try await redis.send(pipeline: [RedisCommand("FT.DROPINDEX", deleteDocuments ? [RedisArgument(name), "DD"] : [RedisArgument(name)])]).first
        if case .error(let message) = reply, !Self.isMissingIndex(message) {
            throw Self.translated(RedisError(code: .server, message: message))
        }
    }

    // MARK: Commands and replies

    /// The TAG value a document of `context` carries: the context hash for done documents, `p`
    /// and the hash for pending ones. One TAG term per query, not `@ctx:{…} @state:{…}`: RediSearch
    /// answers an intersection of two terms by brute force over the matching documents (17 ms at
    /// 100k entries here), one term with HNSW (under 1 ms).
    static func tag(context: String, pending: Bool) -> String { pending ? "p" + context : context }

    private func searchCommand(_ vector: [Float], context: String, state: String, k: Int, efRuntime: Int) -> RedisCommand {
        let filter = "@ctx:{\(Self.tag(context: context, pending: state == "pending"))}"
        return RedisCommand("FT.SEARCH", [
            RedisArgument(name),
            RedisArgument("(\(filter))=>[KNN \(k) @vec $B EF_RUNTIME \(efRuntime) AS dist]"),
            "PARAMS", "2", "B", RedisArgument(bytes: VectorBytes.encode(vector)),
            "SORTBY", "dist", "RETURN", "6", "dist", "state", "text", "key", "seq", "answer",
            "LIMIT", "0", RedisArgument(k), "DIALECT", "2",
        ])
    }

    /// Parses `[total, key, [field, value, …], …]`.
    static func neighbors(_ reply: RESPValue) throws -> [SemanticNeighbor] {
        if case .error(let message) = reply { throw RedisError(code: .server, message: message) }
        guard let items = reply.array, !items.isEmpty else {
            throw RedisError(code: .protocolError, message: "FT.SEARCH replied \(String(describing: reply).prefix(120))")
        }
        var result: [SemanticNeighbor] = []
        var index = 1
        while index + 1 < items.count {
            defer { index += 2 }
            guard let key = items[index].string else { continue }
            let fields = pairs(items[index + 1])
            guard let distanceText = fields["dist"]?.string, let distance = Double(distanceText), distance.isFinite else { continue }
            result.append(SemanticNeighbor(
                documentKey: key,
                similarity: 1 - distance,
                pending: fields["state"]?.string != "done",
                text: fields["text"]?.string ?? "",
                cacheKey: fields["key"]?.string ?? "",
                sequence: fields["seq"]?.int ?? .max,
                answer: fields["answer"]?.string
            ))
        }
        return result
    }

    static func pairs(_ value: RESPValue) -> [String: RESPValue] {
        var result: [String: RESPValue] = [:]
        let items = value.array ?? []
        var index = 0
        while index + 1 < items.count {
            if let name = items[index].string { result[name] = items[index + 1] }
            index += 2
        }
        return result
    }

    /// The prefix and dimension of an index name `<prefix>-v1-<dimensions>`, `nil` for other names.
    static func parse(name: String) -> (prefix: String, dimensions: Int)? {
        let marker = "-\(schemaVersion)-"
        guard let range = name.range(of: marker, options: .backwards), let dimensions = Int(name[range.upperBound...]),
              (1...65_536).contains(dimensions), range.lowerBound > name.startIndex else { return nil }
        return (String(name[..<range.lowerBound]), dimensions)
    }

    static func isMissingIndex(_ message: String) -> Bool {
        let lower = message.lowercased()
        return lower.contains("unknown index name") || lower.contains("no such index")
    }

    static func translated(_ error: RedisError) -> any Error {
        let lower = error.message.lowercased()
        if lower.contains("unknown command") { return SemanticError.vectorSearchUnavailable(error.message) }
        return error
    }
}
