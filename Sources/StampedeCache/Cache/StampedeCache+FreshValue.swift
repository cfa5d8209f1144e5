import Foundation
import NIOCore
import RedisClient

extension StampedeCache {
    /// The stored value for `key` if it is fresh now by the Redis server's clock — without taking
    /// the lock, waiting for another worker, refreshing or computing anything (what HTTP's
    /// `Cache-Control: only-if-cached` asks for). One round trip (`TIME` + `GET`), or none when the
    /// near-cache holds it.
    /// - Returns: the value with source ``CacheSource/freshHit`` (``CacheSource/freshHitNear``
    ///   from the near-cache), or `nil` when nothing fresh is
    ///   stored (missing, stale, or being computed elsewhere).
    /// - Throws: ``CacheError`` (`closed`, `invalidKey`, `redisFailure`).
    public func freshValue(for key: String) async throws -> CacheResult<[UInt8]>? {
        try checkOpen()
        let generation = await currentGeneration()
        if let served = nearHit(key, generation: generation, now: .now) {
            return served.result(Array(served.value.readableBytesView))
        }
        let entry = try keySpace.entry(key, generation: generation)
        let read: FastRead
        do {
            if let near, let tracked = await near.read(entry, userKey: key, generation: generation) {
                read = tracked
            } else {
                read = try await redis.fastRead(entry, clock: serverClock, cluster: try await redis.isCluster(), batcher: reads)
            }
        } catch {
            throw CacheError.redisFailure(error)
        }
        guard case .entry(let stored) = read, stored.isFresh else { return nil }
        recordHit(entry)
        metrics.request(.freshHit)
        return Self.served(stored, .freshHit).result(Array(stored.value.readableBytesView))
    }

    /// The `Codable` value for `key` if it is fresh now (see ``freshValue(for:)``); a stored value
    /// that does not decode as `T` reads as `nil`.
    public func freshValue<T: Codable & Sendable>(for key: String, as type: T.Type = T.self) async throws -> CacheResult<T>? {
        guard let raw = try await freshValue(for: key) else { return nil }
        guard let decoded = try? recentValues.decode(T.self, key: key, from: raw.value) else { return nil }
        return raw.map { _ in decoded }
    }
}
