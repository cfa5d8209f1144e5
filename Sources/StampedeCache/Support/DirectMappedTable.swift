package import Synchronization

/// A fixed number of slots, each holding at most one entry behind its own lock, chosen by a hash:
/// the memory the cache's and the proxy's small "recently seen" tables share (key names, decoded
/// values, parsed request bodies, rendered responses).
///
/// An entry evicts whichever entry hashed to its slot, so the table holds at most ``slotCount``
/// entries and costs the same whatever the workload: no eviction policy to run, nothing to sweep.
/// Callers on different slots never wait for each other. What an entry answers for is the
/// caller's to check inside ``withSlot(hash:_:)``: slots are chosen by hash, so two different
/// keys can share one.
package final class DirectMappedTable<Entry: Sendable>: Sendable {
    // Inlinable, so the proxy's tables are specialised for their entry types like the cache's.
    @usableFromInline
    final class Slot: Sendable {
        @usableFromInline
        let entry = Mutex<Entry?>(nil)

        init() {}
    }

    @usableFromInline
    let slots: [Slot]
    @usableFromInline
    let mask: Int

    /// How many entries the table holds at most.
    package var slotCount: Int { slots.count }

    /// A table of `slotCount` slots, rounded up to a power of two (at least 1).
    package init(slotCount: Int) {
        var count = 1
        while count < slotCount { count <<= 1 }
        slots = (0..<count).map { _ in Slot() }
        mask = count - 1
    }

    /// Runs `body` on the entry of the slot `hash` selects, under that slot's lock.
    @inlinable
    package func withSlot<Result>(hash: Int, _ body: (inout Entry?) throws -> Result) rethrows -> Result {
        try slots[hash & mask].entry.withLock { try body(&$0) }
    }
}
