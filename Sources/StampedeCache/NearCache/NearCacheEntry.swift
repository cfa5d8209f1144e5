import RedisClient

/// A fresh entry held in process memory, with the local monotonic instant until which it is
/// certainly fresh by the Redis server's clock.
struct NearCacheEntry: Sendable {
    /// The entry as read from Redis (`now` is the server's `TIME` in that read).
    var stored: StoredEntry
    /// The local instant the read was sent. `TIME` ran after it, so the server's clock at any later
    /// local instant `t` is at most `stored.now + 1 ms + (t - sentAt)` (TIME is in whole ms).
    var sentAt: ContinuousClock.Instant
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
        self.sentAt = sentAt
        self.generation = generation
        self.keys = keys
        // fresh while stored.now + 1 + elapsed < freshUntil  ⇔  elapsed < freshUntil - now - 1
        let remaining = stored.freshUntil - stored.now - 1
        self.freshDeadline = sentAt + .milliseconds(max(0, remaining))
        self.bytes = stored.value.readableBytes + userKey.utf8.count + keys.id.utf8.count * 2 + NearCacheConfiguration.entryOverheadBytes
    }

    /// The server time at `instant` by the upper bound (ms).
    func serverTimeUpperBound(at instant: ContinuousClock.Instant) -> Int64 {
        let elapsed = instant - sentAt
        let (seconds, attoseconds) = elapsed.components
        return stored.now + 1 + seconds * 1_000 + attoseconds / 1_000_000_000_000_000 + 1
    }
}
