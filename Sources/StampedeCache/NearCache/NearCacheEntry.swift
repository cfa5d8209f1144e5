import RedisClient

/// A fresh entry held in process memory, with the local instant until which it is certainly fresh
/// by the Redis server's clock.
struct NearCacheEntry: Sendable {
    /// What a hit reads (the value, its times, the freshness bound), computed once here.
    var hit: NearCacheHit
    /// The namespace generation of the keys it was read with.
    var generation: Int64
    /// The entry's Redis keys (its value key is what invalidations name).
    var keys: EntryKeys
    /// Bytes counted against ``NearCacheConfiguration/maxBytes``.
    var bytes: Int

    /// Until when (local clock) the entry is fresh by the upper bound of the server's clock.
    var freshDeadline: NearInstant { hit.freshDeadline }

    /// - Parameters:
    ///   - stored: the entry as read from Redis (`now` is the server's `TIME` in that read).
    ///   - sentAt: when the read carrying that `TIME` was sent.
    init(stored: StoredEntry, sentAt: NearInstant, generation: Int64, keys: EntryKeys, userKey: String) {
        self.hit = NearCacheHit(stored: stored, sentAt: sentAt)
        self.generation = generation
        self.keys = keys
        self.bytes = stored.value.readableBytes + userKey.utf8.count + keys.id.utf8.count * 2 + NearCacheConfiguration.entryOverheadBytes
    }
}
