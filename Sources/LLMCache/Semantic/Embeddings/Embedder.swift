import Crypto
import Foundation
import RedisClient
import Logging

/// Embeds the texts the semantic layer looks up: from the fleet-wide embedding cache in Redis
/// (key: model + SHA-256 of the text, float32 little-endian bytes), else through the
/// ``MicroBatcher`` to the upstream; checks every vector's dimension against the index.
final class Embedder: Sendable {
    /// One embedded text.
    struct Embedding: Sendable {
        var vector: [Float]
        /// Whether it came from the embedding cache (no upstream call for it).
        var cached: Bool
        /// Its share of the upstream call's prompt tokens (0 when cached).
        var promptTokens: Int
    }

    let upstream: any EmbeddingsUpstream
    let redis: RedisClient
    let dimensions: Int
    let cacheTTL: Duration
    let batcher: MicroBatcher
    let logger: Logger

    init(upstream: any EmbeddingsUpstream, redis: RedisClient, dimensions: Int, cacheTTL: Duration, maxBatch: Int, maxWait: Duration, logger: Logger) {
        self.upstream = upstream
        self.redis = redis
        self.dimensions = dimensions
        self.cacheTTL = cacheTTL
        self.batcher = MicroBatcher(upstream: upstream, maxBatch: maxBatch, maxWait: maxWait)
        self.logger = logger
    }

    /// The embedding cache key of `text`: `stampede:emb:{<model>}:<sha256 hex>` (no text in the key).
    func cacheKey(_ text: String) -> String {
        "stampede:emb:{\(RequestKey.escape(upstream.model, escapingColon: false))}:\(SHA256.hex(Data(text.utf8)))"
    }

    /// The vector of `text`.
    /// - Throws: ``UpstreamError`` from the embeddings upstream, ``SemanticError/dimensionMismatch(index:embedding:model:)``.
    func embed(_ text: String, deadline: ContinuousClock.Instant) async throws -> Embedding {
        let key = cacheKey(text)
        if let stored = try? await redis.send("GET", RedisArgument(key)), let bytes = stored.bytes,
           let vector = VectorBytes.decode(bytes), vector.count == dimensions {
            return Embedding(vector: vector, cached: true, promptTokens: 0)
        }
        let embedded = try await batcher.embed(text, deadline: deadline)
        guard embedded.vector.count == dimensions else {
            throw SemanticError.dimensionMismatch(index: dimensions, embedding: embedded.vector.count, model: upstream.model)
        }
        do {
            try await redis.send("SET", RedisArgument(key), RedisArgument(bytes: VectorBytes.encode(embedded.vector)), "PX", RedisArgument(cacheTTL.wholeMilliseconds))
        } catch {
            logger.debug("embedding not cached", metadata: ["error": "\(error)"])
        }
        return Embedding(vector: embedded.vector, cached: false, promptTokens: embedded.promptTokens)
    }
}
