/// The in-flight command queue of one connection: a ring buffer whose head is moved out when it is
/// answered and modified in place while a pipeline gathers its replies.
///
/// Why not NIO's `CircularBuffer`: its `removeFirst()` returns a copy of the head and then
/// destroys the slot, and its subscript has no in-place accessor. For a queued command that means
/// every reply retained and released the caller's continuation and its follow-up, and appending to
/// a pipeline's gathered replies copied the array each time: quadratic in the pipeline's length
/// (a 10,000-reply pipeline spent 78 ms copying, against 1.2 ms in place; Benchmarks/README).
/// Here an element is only ever moved: `append` consumes it, ``removeFirst()`` takes it out of its
/// slot, ``modifyFirst(_:)`` and the subscript yield it in place.
///
/// Logical positions run from 0 (the head) to `count - 1`. Not thread-safe: a connection's queue
/// lives in its state machine, on its event loop.
package struct CommandQueue<Element> {
    /// Slots; `nil` outside the `count` elements starting at `head`. Its count is a power of two.
    private var slots: [Element?]
    private var head = 0
    /// The number of queued elements.
    package private(set) var count = 0

    /// An empty queue with room for `initialCapacity` elements before it grows (rounded up to a
    /// power of two, at least 2).
    package init(initialCapacity: Int = 16) {
        var capacity = 2
        while capacity < initialCapacity, capacity < (1 << 30) { capacity <<= 1 }
        slots = Array(repeating: nil, count: capacity)
    }

    /// Whether nothing is queued.
    package var isEmpty: Bool { count == 0 }

    private var mask: Int { slots.count - 1 }

    /// The slot index of logical `position`.
    private func slot(_ position: Int) -> Int { (head &+ position) & mask }

    /// Queues `element` at the tail, doubling the capacity when full.
    package mutating func append(_ element: consuming Element) {
        if count == slots.count { grow() }
        slots[slot(count)] = consume element
        count += 1
    }

    /// Takes the head out of the queue (no copy).
    /// - Precondition: the queue is not empty.
    package mutating func removeFirst() -> Element {
        precondition(count > 0, "removeFirst() on an empty CommandQueue")
        guard let element = slots[head].take() else { preconditionFailure("CommandQueue: the head slot was empty") }
        head = (head &+ 1) & mask
        count -= 1
        if count == 0 { head = 0 }
        return element
    }

    /// Runs `body` on the head in place; `nil` (without calling `body`) when the queue is empty.
    package mutating func modifyFirst<Result>(_ body: (inout Element) throws -> Result) rethrows -> Result? {
        guard count > 0 else { return nil }
        return try body(&slots[head]!)
    }

    /// Runs `body` on the head, to read it (for changes use ``modifyFirst(_:)``); `nil` when the queue is empty.
    package func withFirst<Result>(_ body: (borrowing Element) throws -> Result) rethrows -> Result? {
        guard count > 0, let first = slots[head] else { return nil }
        return try body(first)
    }

    /// The element at logical `position` (0 is the head), read or modified in place.
    /// - Precondition: `0 <= position < count`.
    package subscript(position: Int) -> Element {
        get {
            precondition(position >= 0 && position < count, "CommandQueue position \(position) out of 0..<\(count)")
            return slots[slot(position)]!
        }
        _modify {
            precondition(position >= 0 && position < count, "CommandQueue position \(position) out of 0..<\(count)")
            yield &slots[slot(position)]!
        }
    }

    /// The logical position of the first element (from the head) that satisfies `predicate`.
    package func firstIndex(where predicate: (borrowing Element) throws -> Bool) rethrows -> Int? {
        for position in 0..<count {
            if let element = slots[slot(position)], try predicate(element) { return position }
        }
        return nil
    }

    /// The smallest value of `key` over the queued elements; `nil` when the queue is empty.
    package func minimum<Key: Comparable>(of key: (borrowing Element) -> Key) -> Key? {
        var smallest: Key?
        for position in 0..<count {
            guard let element = slots[slot(position)] else { continue }
            let value = key(element)
            if smallest.map({ value < $0 }) ?? true { smallest = value }
        }
        return smallest
    }

    /// Empties the queue, returning its elements from head to tail (moved, not copied).
    package mutating func removeAll() -> [Element] {
        var elements: [Element] = []
        elements.reserveCapacity(count)
        while count > 0 { elements.append(removeFirst()) }
        return elements
    }

    /// Doubles the capacity, laying the elements out from slot 0.
    private mutating func grow() {
        var larger: [Element?] = Array(repeating: nil, count: slots.count * 2)
        for position in 0..<count { larger[position] = slots[slot(position)].take() }
        slots = larger
        head = 0
    }
}
