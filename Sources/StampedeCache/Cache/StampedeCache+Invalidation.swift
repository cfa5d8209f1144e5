import Logging
import NIOCore
import RedisClient
import Synchronization

extension StampedeCache {
    /// Deletes one entry and tells every process; a computation already in flight may still commit.
    @discardableResult
    public func invalidate(key: String) async throws -> Bool {
        try checkOpen()
        let entry = try keySpace.entry(key, generation: await currentGeneration())
        pendingCommits.remove(entry.id)
        near?.drop(valueKey: entry.value)
        defer { near?.drop(valueKey: entry.value) }
        do {
            return try await redis.execute(InvalidateKey(entry, channel: await noticeChannel(for: entry)))
        } catch {
            throw CacheError.redisFailure(error)
        }
    }

    /// Retires every entry of the namespace at once (O(1)): bumps the generation that is part of every
    /// key. Old entries are no longer read and expire by their TTL. Returns the new generation.
    @discardableResult
    public func invalidateAll() async throws -> Int64 {
        try checkOpen()
        do {
            guard let newGeneration = try await redis.send("INCR", RedisArgument(keySpace.generationKey)).int else {
                throw CacheError.redisFailure(RedisError(code: .protocolError, message: "INCR returned no integer"))
            }
            generation.observe(newGeneration)
            _ = try await redis.spublish(RedisArgument("gen|\(newGeneration)"), to: keySpace.channel)
            return newGeneration
        } catch let error as RedisError {
            throw CacheError.redisFailure(error)
        }
    }

    /// Deletes every entry committed with `tag` (via a tag index; no `KEYS` scan). Returns how many were deleted.
    @discardableResult
    public func invalidate(tag: String) async throws -> Int {
        try checkOpen()
        let tagKey = keySpace.tagKey(tag)
        do {
            let members = try await redis.send("SMEMBERS", RedisArgument(tagKey)).array ?? []
            let ids = members.compactMap(\.string)
            let deleted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for id in ids {
                    group.addTask {
                        let entry = EntryKeys(id: id)
                        self.pendingCommits.remove(entry.id)
                        self.near?.drop(valueKey: entry.value)
                        defer { self.near?.drop(valueKey: entry.value) }
                        return try await self.redis.execute(InvalidateKey(entry, channel: await self.noticeChannel(for: entry)))
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            try await redis.send("DEL", RedisArgument(tagKey))
            return deleted
        } catch let error as RedisError {
            throw CacheError.redisFailure(error)
        }
    }

    /// Waits for background refreshes to finish (each is bounded by ``CachePolicy/computeTimeout``)
}
