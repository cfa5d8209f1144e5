import Synchronization

/// Whether a lookup should read the entry with a plain `GET` before it runs `get_or_lock`, decided
/// from what the cache's recent lookups found.
///
/// The `GET` first is the cheapest way to serve a fresh hit (no script, and concurrent reads leave
/// together as one `MGET`), but a lookup that finds nothing fresh then pays a second round trip for
/// `get_or_lock`, which would have answered a fresh entry too. So a cache reads first while at
/// least ``threshold`` of its last ``window`` lookups found a fresh entry in Redis, and otherwise
/// sends `get_or_lock` straight away: one round trip for a miss, at the price of a script (instead
/// of a `GET`) for the hits among them. The decision changes nothing else: the script serves a fresh
/// entry exactly as the read does.
///
/// The history is a shift register of the last ``window`` outcomes in one atomic word (1 = found
/// fresh); it starts full, so a new cache reads first. A workload of hits never writes it (the
/// register is already all ones), so the hot path costs one relaxed load.
final class LookupHistory: Sendable {
    /// How many recent lookups are remembered.
    static let window = 16
    /// How many of them must have found a fresh entry for the next lookup to read first.
    static let threshold = 8

    private static let mask: UInt32 = (1 << UInt32(window)) - 1
    private let bits = Atomic<UInt32>(LookupHistory.mask)

    init() {}

    /// Whether the next lookup reads first.
    var readsFirst: Bool {
        (bits.load(ordering: .relaxed) & Self.mask).nonzeroBitCount >= Self.threshold
    }

    /// Records whether a lookup found a fresh entry in Redis.
    func record(foundFresh: Bool) {
        var current = bits.load(ordering: .relaxed)
        while true {
            let next = ((current << 1) | (foundFresh ? 1 : 0)) & Self.mask
            if next == current { return }
            let (exchanged, original) = bits.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
