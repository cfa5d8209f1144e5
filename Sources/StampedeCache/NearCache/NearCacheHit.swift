import NIOCore

/// What a near hit needs of a held entry, copied out under its stripe's lock: the value (one
/// reference) and numbers, not the whole ``NearCacheEntry`` (whose keys would be retained too).
struct NearCacheHit: Sendable {
    /// The value bytes (shared with the held entry, not copied).
    var value: ByteBuffer
    /// Server time (ms) the value was computed, and until which it is fresh.
    var createdAt: Int64
    var freshUntil: Int64
    /// The computation's duration (ms), for XFetch.
    var computeMillis: Int64
    /// The bound of the server's clock from the read that filled the entry.
    var sample: ServerTimeSample
    /// Until when (local monotonic clock) the entry is fresh by that bound.
    var freshDeadline: ContinuousClock.Instant

    init(_ entry: NearCacheEntry) {
        value = entry.stored.value
        createdAt = entry.stored.createdAt
        freshUntil = entry.stored.freshUntil
        computeMillis = entry.stored.computeMillis
        sample = entry.sample
        freshDeadline = entry.freshDeadline
    }

    /// The server time at `instant` by the upper bound (ms).
    func serverTimeUpperBound(at instant: ContinuousClock.Instant) -> Int64 {
        sample.upperBound(at: instant)
    }
}
