import RedisClient

/// A fresh entry held in process memory, with the local monotonic instant until which it is
/// certainly fresh by the Redis server's clock.
struct NearCacheEntry: Sendable {
    /// The entry as read from Redis (`now` is the server's `TIME` in that read).
    var stored: StoredEntry
    /// That read's `TIME` with the instants it was sent and received: the bound of the server's
    /// clock from then on (the same rule as ``ServerClock``'s hits that skip `TIME`).
    var sample: ServerTimeSample
    /// Until when (local monotonic clock) the entry is fresh by that upper bound of server time.
    var freshDeadline: ContinuousClock.Instant
    /// The namespace generation of the keys it was read with.
    var generation: Int64
    /// The entry's Redis keys (its value key is what invalidations name).
    var keys: EntryKeys
    /// Bytes counted against ``NearCacheConfiguration/maxBytes``.
    var bytes: Int

    init(stored: StoredEntry, sentAt: ContinuousClock.Instant, generation: Int64, keys: EntryKeys, userKey: String) {
        self.stored = stored
        self.sample = ServerTimeSample(serverMillis: stored.now, sent: sentAt, received: stored.readAt)
        self.generation = generation
        self.keys = keys
        self.freshDeadline = sample.deadline(before: stored.freshUntil)
        self.bytes = stored.value.readableBytes + userKey.utf8.count + keys.id.utf8.count * 2 + NearCacheConfiguration.entryOverheadBytes
    }
}
