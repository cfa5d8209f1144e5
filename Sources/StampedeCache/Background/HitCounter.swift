import Synchronization

/// Hits per entry since the last flush (hot-key promotion is counted in batches, off the hit path).
/// Holds at most ``capacity`` entries: without a running background loop nothing drains it.
/// Striped by entry: concurrent hits on different keys rarely wait for each other.
final class HitCounter: Sendable {
    /// The most distinct entries counted between two flushes.
    static let capacity = 100_000
    private static let stripeCount = 16

    private struct State {
        var counts: [String: (EntryKeys, Int)] = [:]
        var warned = false
    }

    private final class Stripe: Sendable {
        let state = Mutex(State())
    }

    private let stripes: [Stripe] = (0..<HitCounter.stripeCount).map { _ in Stripe() }

    /// Counts a hit. Returns false once per stripe, when it first reaches its share of the capacity
    /// (the caller warns); later hits of new entries are dropped quietly until a flush drains it.
    func record(_ entry: EntryKeys) -> Bool {
        stripes[Self.stripe(of: entry.id)].state.withLock { state in
            if let index = state.counts.index(forKey: entry.id) {
                state.counts.values[index].1 += 1  // one hash lookup, counted in place
                return true
            }
            guard state.counts.count < Self.capacity / Self.stripeCount else {
                defer { state.warned = true }
                return state.warned
            }
            state.counts[entry.id] = (entry, 1)
            return true
        }
    }

    /// A stripe from the id's length and last bytes: cheap (the dictionary hashes the id anyway,
    /// a second full hash only to pick the stripe cost as much as the count) and spread enough,
    /// since ids of one namespace differ mostly at their end. Any choice is correct; a poor one
    /// only makes hits on different keys share a lock.
    private static func stripe(of id: String) -> Int {
        var mixed = UInt(id.utf8.count)
        var seen = 0
        for byte in id.utf8.reversed() {
            mixed = mixed &* 31 &+ UInt(byte)
            seen += 1
            if seen == 4 { break }
        }
        return Int(truncatingIfNeeded: mixed ^ (mixed >> 7)) & (stripeCount - 1)
    }

    func drain() -> [(EntryKeys, Int)] {
        stripes.flatMap { stripe in
            stripe.state.withLock { state in
                defer { state.counts = [:] }
                return Array(state.counts.values)
            }
        }
    }
}
