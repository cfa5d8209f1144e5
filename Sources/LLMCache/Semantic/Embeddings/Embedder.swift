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

/// Vectors as Redis stores them for RediSearch: float32, little-endian, packed.
package enum VectorBytes {
    package static func encode(_ vector: [Float]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// `nil` unless the bytes are whole finite float32 values.
    package static func decode(_ bytes: [UInt8]) -> [Float]? {
        guard !bytes.isEmpty, bytes.count % 4 == 0 else { return nil }
        var vector: [Float] = []
        vector.reserveCapacity(bytes.count / 4)
        var index = 0
        while index < bytes.count {
            let bits = UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24
            let value = Float(bitPattern: bits)
            guard value.isFinite else { return nil }
            vector.append(value)
            index += 4
        }
        return vector
    }
}

extension SHA256 {
    /// Lowercase hex SHA-256 of `data`.
    static func hex(_ data: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in SHA256.hash(data: data) {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
