import CoreMetrics
import Synchronization

/// Values this process computed and already answered whose commit has not been answered by Redis
/// yet (``CachePolicy/commitInBackground``), by entry id.
///
/// Until the commit lands, Redis still holds the computing worker's lock and no value, so a caller
/// of this process asking for the key again would wait for its own process's commit. It receives
/// the value from here instead. A hit costs one relaxed atomic load while nothing is pending.
/// The number pending is exported (`stampede_cache_pending_commits`, counted up and down, so the
/// caches that share a metrics label add up): one that stays up means commits are slow or stuck.
final class PendingCommits<Value: Sendable>: Sendable {
    private let count = Atomic<Int>(0)
    private let values = Mutex<[String: Value]>([:])
    private let meter: Meter?

    init(meter: Meter? = nil) {
        self.meter = meter
    }

    /// Holds `value` for `id` until ``remove(_:)``.
    func insert(_ id: String, _ value: Value) {
        let added = values.withLock { values in
            guard values.updateValue(value, forKey: id) == nil else { return false }
            count.add(1, ordering: .relaxed)
            return true
        }
        if added { meter?.increment() }
    }

    /// Forgets `id`'s value (its commit was answered, or the entry was invalidated).
    func remove(_ id: String) {
        let removed = values.withLock { values in
            guard values.removeValue(forKey: id) != nil else { return false }
            count.subtract(1, ordering: .relaxed)
            return true
        }
        if removed { meter?.decrement() }
    }

    /// The value pending for `id`, if any.
    func value(for id: String) -> Value? {
        guard count.load(ordering: .relaxed) > 0 else { return nil }
        return values.withLock { $0[id] }
    }

    /// How many commits are pending.
    var pendingCount: Int { count.load(ordering: .relaxed) }
}
