import NIOCore

/// What a near hit needs of a held entry, computed once when the entry is held and copied out
/// under its stripe's lock: the value (one reference) and integers, not the whole
/// ``NearCacheEntry`` (whose keys would be retained too).
struct NearCacheHit: Sendable {
    /// The value bytes (shared with the held entry, not copied).
    var value: ByteBuffer
    /// Server time (ms) the value was computed, and until which it is fresh.
    var createdAt: Int64
    var freshUntil: Int64
    /// The computation's duration (ms), for XFetch.
    var computeMillis: Int64
    /// The server's `TIME` (ms) in the read that filled the entry, and the local instant that read
    /// was sent: the bound of the server's clock from then on (the rule of ``ServerTimeSample``).
    var serverMillis: Int64
    var sentAt: NearInstant
    /// Until when (local clock) the entry is certainly fresh by that bound.
    var freshDeadline: NearInstant

    init(stored: StoredEntry, sentAt: NearInstant) {
        value = stored.value
        createdAt = stored.createdAt
        freshUntil = stored.freshUntil
        computeMillis = stored.computeMillis
        serverMillis = stored.now
        self.sentAt = sentAt
        // `TIME` ran after `sentAt` and reads whole milliseconds: at `sentAt + e` the server's clock
        // is below `serverMillis + 1 ms + e`, at or below `freshUntil` while
        // `e ≤ freshUntil - serverMillis - 1 ms` (ServerTimeSampleTests checks both forms agree).
        freshDeadline = sentAt.adding(milliseconds: max(0, stored.freshUntil &- stored.now &- 1))
    }

    /// The upper bound of the server's clock at `instant` (ms, rounded up).
    func serverTimeUpperBound(at instant: NearInstant) -> Int64 {
        let elapsed = max(0, instant.nanoseconds(since: sentAt))
        let millis = elapsed / 1_000_000 + (elapsed % 1_000_000 > 0 ? 1 : 0)
        return serverMillis &+ 1 &+ millis
    }
}
