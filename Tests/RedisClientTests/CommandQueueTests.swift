@testable import RedisClient
import Synchronization
import Testing

@Suite("command queue")
struct CommandQueueTests {
    /// A reference whose deinitialisations are counted.
    final class Tracked {
        let value: Int
        let freed: Counter
        init(_ value: Int, freed: Counter) {
            self.value = value
            self.freed = freed
        }
        deinit { freed.add() }
    }

    final class Counter: Sendable {
        private let count = Atomic(0)
        func add() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    struct Entry {
        var id: Int
        var reference: Tracked
        var gathered: [Int] = []
    }

    @Test("keeps FIFO order across wrap-around and growth while wrapped")
    func fifoAcrossWrapAndGrowth() {
        let freed = Counter()
        var queue = CommandQueue<Entry>(initialCapacity: 4)
        for id in 0..<3 { queue.append(Entry(id: id, reference: Tracked(id, freed: freed))) }
        #expect(queue.removeFirst().id == 0)
        #expect(queue.removeFirst().id == 1)
        // The head is now at slot 2 of 4: these wrap, then the queue grows while wrapped.
        for id in 3..<43 { queue.append(Entry(id: id, reference: Tracked(id, freed: freed))) }
        #expect(queue.count == 41)
        var order: [Int] = []
        while !queue.isEmpty { order.append(queue.removeFirst().id) }
        #expect(order == Array(2..<43))
        #expect(queue.count == 0)
        #expect(freed.value == 43)
    }

    @Test("the head is modified in place: a pipeline's gathered replies are never copied")
    func headIsModifiedInPlace() {
        let freed = Counter()
        var queue = CommandQueue<Entry>()
        queue.append(Entry(id: 1, reference: Tracked(1, freed: freed)))
        queue.append(Entry(id: 2, reference: Tracked(2, freed: freed)))
        // Only the queue holds the references: modified in place, they stay unique (a
        // get-then-set accessor would hold a second reference during the change).
        let unique = queue.modifyFirst { head -> Bool in
            head.gathered.append(7)
            return isKnownUniquelyReferenced(&head.reference)
        }
        #expect(unique == true)
        #expect(isKnownUniquelyReferenced(&queue[1].reference))
        queue[1].gathered.append(9)
        var first = queue.removeFirst()
        #expect(first.gathered == [7])
        // Moved out, not copied: the taken entry holds the only reference.
        #expect(isKnownUniquelyReferenced(&first.reference))
        #expect(queue[0].gathered == [9])
        #expect(freed.value == 0)
    }

    @Test("an empty queue answers nil instead of calling the body")
    func emptyQueue() {
        var queue = CommandQueue<Entry>()
        var called = false
        #expect(queue.modifyFirst { _ in called = true } == nil)
        #expect(queue.withFirst { _ in called = true } == nil)
        #expect(!called)
        #expect(queue.minimum(of: { $0.id }) == nil)
        #expect(queue.firstIndex(where: { _ in true }) == nil)
        #expect(queue.removeAll().isEmpty)
    }

    @Test("removeAll hands back every element in order and frees each exactly once")
    func removeAllMovesEveryElement() {
        let freed = Counter()
        var queue = CommandQueue<Entry>(initialCapacity: 2)
        for id in 0..<5 { queue.append(Entry(id: id, reference: Tracked(id, freed: freed))) }
        _ = queue.removeFirst()
        #expect(freed.value == 1)
        queue.append(Entry(id: 5, reference: Tracked(5, freed: freed)))
        do {
            let all = queue.removeAll()
            #expect(all.map(\.id) == [1, 2, 3, 4, 5])
            #expect(queue.isEmpty)
            #expect(freed.value == 1)
        }
        #expect(freed.value == 6)
    }

    @Test("finds by predicate and minimum from the head, by logical position")
    func searches() {
        let freed = Counter()
        var queue = CommandQueue<Entry>(initialCapacity: 4)
        for id in [9, 4, 6, 8] { queue.append(Entry(id: id, reference: Tracked(id, freed: freed))) }
        _ = queue.removeFirst()
        queue.append(Entry(id: 3, reference: Tracked(3, freed: freed)))  // wraps to slot 0
        #expect(queue.firstIndex(where: { $0.id == 3 }) == 3)
        #expect(queue.firstIndex(where: { $0.id > 5 }) == 1)
        #expect(queue.minimum(of: { $0.id }) == 3)
        #expect(queue.withFirst { $0.id } == 4)
    }
}
