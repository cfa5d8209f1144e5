import Synchronization

/// Hits per entry since the last flush (hot-key promotion is counted in batches, off the hit path).
/// Holds at most ``capacity`` entries: without a running background loop nothing drains it.
final class HitCounter: Sendable {
    /// The most distinct entries counted between two flushes.
    static let capacity = 100_000

    private struct State {
        var counts: [String: (EntryKeys, Int)] = [:]
        var warned = false
    }

    private let state = Mutex(State())

    /// Counts a hit. Returns false once, when the counter first reaches its capacity (the caller
    /// warns); later hits of new entries are dropped quietly until a flush drains it.
    func record(_ entry: EntryKeys) -> Bool {
        state.withLock { state in
            if let current = state.counts[entry.id] {
                state.counts[entry.id] = (entry, current.1 + 1)
                return true
            }
            guard state.counts.count < Self.capacity else {
                defer { state.warned = true }
                return state.warned
            }
            state.counts[entry.id] = (entry, 1)
            return true
        }
    }

    func drain() -> [(EntryKeys, Int)] {
        state.withLock { state in
            defer { state.counts = [:] }
            return Array(state.counts.values)
        }
    }
}
