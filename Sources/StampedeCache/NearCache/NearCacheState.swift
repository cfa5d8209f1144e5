import RedisClient

/// The near-cache's contents: a bounded LRU (by entries and bytes) with TinyLFU admission, an
/// index from Redis value keys to entries for invalidations, and the epochs that keep a read which
/// raced an invalidation from being inserted. A value type: ``NearCache`` holds it in a mutex.
struct NearCacheState: Sendable {
    /// A key with its `hashValue`, computed once per request: the index hashes that integer, not
    /// the key's bytes a second time.
    private struct HashedKey: Hashable, Sendable {
        var key: String
        var hash: Int
        init(_ key: String, hash: Int) {
            self.key = key
            self.hash = hash
        }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        static func == (lhs: HashedKey, rhs: HashedKey) -> Bool { lhs.hash == rhs.hash && lhs.key == rhs.key }
    }

    private struct Slot: Sendable {
        var key: String
        var hash: Int
        var entry: NearCacheEntry
        var previous: Int
        var next: Int
        /// Hits answered from this slot since the last ``drainHits()`` (hot-key counting).
        var pendingHits = 0
    }

    /// What a read must present to insert its result: the epochs when it was sent.
    struct Ticket: Sendable {
        fileprivate let session: UInt64
        fileprivate let bucket: Int
        fileprivate let epoch: UInt64
    }

    enum Insertion: Sendable, Equatable {
        /// Held; `evicted` entries were dropped to make room.
        case inserted(evicted: Int)
        /// An invalidation, a flush or a loss of coherence happened while the value was read.
        case raced
        /// Not admitted: the least recently used entries were asked for more often (TinyLFU).
        case notAdmitted
        /// Larger than ``NearCacheConfiguration/maxEntryBytes``.
        case tooLarge
    }

    private let configuration: NearCacheConfiguration
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var index: [HashedKey: Int] = [:]
    private var byValueKey: [String: Int] = [:]
    /// Slots whose `pendingHits` went from 0 to 1 since the last ``drainHits()``.
    private var touched: [Int] = []
    private var head = -1  // most recently used
    private var tail = -1  // least recently used
    private(set) var bytes = 0
    private var sketch: FrequencySketch
    /// Bumped by every flush: a read sent before it never inserts.
    private var session: UInt64 = 0
    /// Bumped by every invalidation of a key hashing to the bucket.
    private var epochs = [UInt64](repeating: 0, count: Self.bucketCount)
    private static let bucketCount = 1024

    init(configuration: NearCacheConfiguration) {
        self.configuration = configuration
        self.sketch = FrequencySketch(capacity: configuration.maxEntries)
    }

    var count: Int { index.count }

    /// The entry for `key` if it is held for `generation` and fresh at `now`; counts the request
    /// for admission either way. An entry of another generation is dropped.
    mutating func lookup(_ key: String, generation: Int64, now: NearInstant) -> NearCacheEntry? {
        guard let (slot, _) = lookup(key, hash: key.hashValue, generation: generation, now: now) else { return nil }
        return slots[slot].entry
    }

    /// ``lookup(_:generation:now:)`` with the key's `hashValue` computed once by the caller: the slot
    /// (for ``countHit(slot:)``) and what a hit needs of the entry.
    mutating func lookup(_ key: String, hash: Int, generation: Int64, now: NearInstant) -> (slot: Int, hit: NearCacheHit)? {
        if configuration.admission == .frequency { sketch.increment(hash) }
        guard let slot = index[HashedKey(key, hash: hash)] else { return nil }
        guard slots[slot].entry.generation == generation else {
            remove(slot)
            return nil
        }
        guard now < slots[slot].entry.hit.freshDeadline else { return nil }
        touch(slot)
        return (slot, slots[slot].entry.hit)
    }

    /// Counts a hit answered from `slot` for hot-key promotion; ``drainHits()`` hands the counts
    /// over. (Counted here, under the lock the lookup already holds, rather than in a second map.)
    mutating func countHit(slot: Int) {
        if slots[slot].pendingHits == 0 { touched.append(slot) }
        slots[slot].pendingHits += 1
    }

    /// The hits counted since the last call, by entry. A removed entry's hits are still reported
    /// until its slot is reused; a flush drops them (at most one flush interval of hits).
    mutating func drainHits() -> [(EntryKeys, Int)] {
        var counted: [(EntryKeys, Int)] = []
        counted.reserveCapacity(touched.count)
        for slot in touched where slot < slots.count && slots[slot].pendingHits > 0 {
            counted.append((slots[slot].entry.keys, slots[slot].pendingHits))
            slots[slot].pendingHits = 0
        }
        touched.removeAll(keepingCapacity: true)
        return counted
    }

    /// The ticket for a read of `valueKey` about to be sent.
    func ticket(for valueKey: String) -> Ticket {
        let bucket = Self.bucket(valueKey)
        return Ticket(session: session, bucket: bucket, epoch: epochs[bucket])
    }

    /// Holds `entry` under `key` if nothing invalidated it since `ticket` was taken.
    mutating func insert(_ key: String, _ entry: NearCacheEntry, ticket: Ticket) -> Insertion {
        guard ticket.session == session, epochs[ticket.bucket] == ticket.epoch else { return .raced }
        guard entry.bytes <= configuration.maxEntryBytes else { return .tooLarge }
        let hashed = HashedKey(key, hash: key.hashValue)
        if let existing = index[hashed] { remove(existing) }
        var evicted = 0
        while index.count >= configuration.maxEntries || bytes + entry.bytes > configuration.maxBytes {
            guard tail >= 0 else { break }
            if configuration.admission == .frequency, sketch.estimate(hashed.hash) <= sketch.estimate(slots[tail].hash) {
                return evicted == 0 ? .notAdmitted : .inserted(evicted: evicted)  // what was evicted stays evicted
            }
            remove(tail)
            evicted += 1
        }
        let slot = Slot(key: key, hash: hashed.hash, entry: entry, previous: -1, next: head)
        let position: Int
        if let free = freeSlots.popLast() {
            slots[free] = slot
            position = free
        } else {
            slots.append(slot)
            position = slots.count - 1
        }
        if head >= 0 { slots[head].previous = position }
        head = position
        if tail < 0 { tail = position }
        index[hashed] = position
        byValueKey[entry.keys.value] = position
        bytes += entry.bytes
        return .inserted(evicted: evicted)
    }

    /// Drops the entries stored under these Redis keys (and blocks reads of them in flight from
    /// inserting). Returns how many entries were dropped.
    mutating func invalidate(valueKeys: [String]) -> Int {
        var dropped = 0
        for valueKey in valueKeys {
            epochs[Self.bucket(valueKey)] &+= 1
            if let slot = byValueKey[valueKey] {
                remove(slot)
                dropped += 1
            }
        }
        return dropped
    }

    /// Drops everything and blocks every read in flight from inserting. Returns how many entries were dropped.
    mutating func flush() -> Int {
        let dropped = index.count
        session &+= 1
        slots.removeAll(keepingCapacity: true)
        freeSlots.removeAll(keepingCapacity: true)
        touched.removeAll(keepingCapacity: true)
        index.removeAll(keepingCapacity: true)
        byValueKey.removeAll(keepingCapacity: true)
        head = -1
        tail = -1
        bytes = 0
        return dropped
    }

    private static func bucket(_ valueKey: String) -> Int {
        valueKey.hashValue & (bucketCount - 1)
    }

    private mutating func unlink(_ slot: Int) {
        let previous = slots[slot].previous
        let next = slots[slot].next
        if previous >= 0 { slots[previous].next = next } else { head = next }
        if next >= 0 { slots[next].previous = previous } else { tail = previous }
    }

    private mutating func touch(_ slot: Int) {
        guard head != slot else { return }
        unlink(slot)
        slots[slot].previous = -1
        slots[slot].next = head
        if head >= 0 { slots[head].previous = slot }
        head = slot
        if tail < 0 { tail = slot }
    }

    private mutating func remove(_ slot: Int) {
        unlink(slot)
        let removed = slots[slot]
        index.removeValue(forKey: HashedKey(removed.key, hash: removed.hash))
        if byValueKey[removed.entry.keys.value] == slot { byValueKey.removeValue(forKey: removed.entry.keys.value) }
        bytes -= removed.entry.bytes
        // Release the value's bytes now; the slot is reused by the next insert.
        slots[slot].entry.hit.value = .init()
        slots[slot].key = ""
        freeSlots.append(slot)
    }
}
