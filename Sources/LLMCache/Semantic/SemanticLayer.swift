import Crypto
import Foundation
import Logging
import RedisClient
import StampedeCache
import Synchronization

/// The semantic step of an ``LLMCache`` computation: it runs inside the exact key's computation
/// (so it happens once per exact miss across the fleet, under the exact key's lock) and decides
/// whether a similar prompt's answer, cached or in flight, can answer the request.
final class SemanticLayer: Sendable {
    /// What the step found.
    enum Finding: Sendable {
        /// A cached answer passed the threshold and the guards; it stays fresh for `remaining`.
        case cached(ChatCompletion, similarity: Double, matchedKey: String, remaining: Duration)
        /// A similar prompt registered earlier is being computed: wait for it.
        case inFlight(SemanticNeighbor)
        /// Nothing usable: compute (this request's pending document is registered).
        case none
    }

    /// What one request's step counted (added to the accounting).
    struct Counts: Sendable {
        var nearMiss = false
        var guardRejections = 0
        var skipped = false
        var embeddingComputed = false
        var embeddingTokens = 0
    }

    /// Pending documents fetched per lookup: enough to find the earliest of a burst of paraphrases.
    static let pendingNeighbors = 32

    let configuration: SemanticConfiguration
    let embedder: Embedder
    let index: any SemanticIndex
    let logger: Logger
    let redis: RedisClient

    init(configuration: SemanticConfiguration, redis: RedisClient, logger: Logger) {
        self.configuration = configuration
        self.redis = redis
        self.logger = logger
        self.embedder = Embedder(
            upstream: configuration.embeddings, redis: redis, dimensions: configuration.dimensions, cacheTTL: configuration.embeddingCacheTTL,
            maxBatch: configuration.maxBatch, maxWait: configuration.maxBatchWait, logger: logger
        )
        self.index = RediSearchIndex(redis: redis, prefix: configuration.indexName, dimensions: configuration.dimensions, logger: logger)
    }

    /// The document key of a request: `stampede:sem:<index>:{<namespace>}:<sha256(generation:cacheKey)>`.
    func documentKey(namespace: String, generation: Int64, cacheKey: String) -> String {
        Self.documentKey(prefix: index.documentPrefix, namespace: namespace, generation: generation, cacheKey: cacheKey)
    }

    static func documentKey(prefix: String, namespace: String, generation: Int64, cacheKey: String) -> String {
        "\(prefix){\(namespace)}:\(SHA256.hex(Data("\(generation):\(cacheKey)".utf8)))"
    }

    /// The key of a request's pending registration (its done document's key + `:pending`).
    static func pendingKey(documentKey: String) -> String { documentKey + ":pending" }

    /// The counter that orders registrations in a namespace.
    static func sequenceKey(namespace: String) -> String { "stampede:semseq:{\(namespace)}" }

    /// Embeds `text`, registers the request as pending and looks at its nearest neighbours.
    /// Never throws for an upstream or Redis failure: the step is then skipped (counted) and the
    /// exact path goes on. `registered` is set to the done document to write (its pending
    /// registration exists from then on).
    func find(
        text: String, context: String, cacheKey: String, documentKey: String, namespace: String,
        threshold: Double, pendingTTL: Duration, counts: inout Counts, registered: inout SemanticDocument?
    ) async -> Finding {
        do {
            let deadline = ContinuousClock.now + configuration.lookupTimeout
            let embedding = try await embedder.embed(text, deadline: deadline)
            counts.embeddingComputed = !embedding.cached
            counts.embeddingTokens = embedding.promptTokens
            let pendingKey = Self.pendingKey(documentKey: documentKey)
            var document = SemanticDocument(key: pendingKey, context: context, vector: embedding.vector, text: text, cacheKey: cacheKey)
            let (sequence, neighbors) = try await index.registerPending(
                document, counter: Self.sequenceKey(namespace: namespace), ttl: pendingTTL, k: configuration.k,
                pendingK: Self.pendingNeighbors, efRuntime: configuration.efRuntime
            )
            document.key = documentKey
            document.sequence = sequence
            registered = document
            // This request's own pending registration is not a neighbour; its own done document
            // (the same text, whose exact entry was evicted or invalidated by key) is.
            let others = neighbors.filter { !($0.pending && $0.cacheKey == cacheKey) }.sorted { $0.similarity > $1.similarity }
            if let best = others.first, best.similarity < threshold { counts.nearMiss = true }
            var earliestInFlight: SemanticNeighbor?
            for neighbor in others where neighbor.similarity >= threshold {
                if configuration.guards.rejection(prompt: text, candidate: neighbor.text) != nil {
                    counts.guardRejections += 1
                    continue
                }
                if neighbor.pending {
                    // The earliest registration leads; later ones wait for it (a chain of waits
                    // ends at it, since everyone waits only for an earlier sequence number).
                    if neighbor.sequence < sequence, neighbor.sequence < (earliestInFlight?.sequence ?? .max) { earliestInFlight = neighbor }
                    continue
                }
                guard let answer = neighbor.answer,
                      let completion = ChatCompletion(cacheJSON: Array(answer.utf8)) ?? (try? JSONDecoder().decode(ChatCompletion.self, from: Data(answer.utf8))),
                      let remaining = try await index.remainingLifetime(documentKey: neighbor.documentKey)
                else { continue }
                return .cached(completion, similarity: neighbor.similarity, matchedKey: neighbor.cacheKey, remaining: remaining)
            }
            if let earliestInFlight { return .inFlight(earliestInFlight) }
            return .none
        } catch {
            counts.skipped = true
            logger.warning("semantic lookup skipped; the exact path goes on", metadata: ["error": "\(error)"])
            return .none
        }
    }

    /// Stores a computed answer as the request's done document, fresh until `freshUntilMillis`.
    func complete(_ document: SemanticDocument, answer: ChatCompletion, freshUntilMillis: Int64) async {
        do {
            let json = String(decoding: answer.cacheJSON(), as: UTF8.self)
            try await index.complete(document, pendingKey: Self.pendingKey(documentKey: document.key), answer: json, freshUntilMillis: freshUntilMillis)
        } catch {
            logger.warning("semantic document not stored; its pending registration expires", metadata: ["error": "\(error)"])
        }
    }

    /// Removes a pending registration that will not be completed.
    func discard(documentKey: String) async {
        do {
            try await index.remove(documentKeys: [Self.pendingKey(documentKey: documentKey)])
        } catch {
            logger.debug("pending semantic document not removed; it expires", metadata: ["error": "\(error)"])
        }
    }
}
