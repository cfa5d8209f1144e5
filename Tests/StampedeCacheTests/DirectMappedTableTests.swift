@testable import StampedeCache
import Testing

@Suite("DirectMappedTable: the slots the recently-seen tables share")
struct DirectMappedTableTests {
    @Test("slot counts round up to a power of two; hashes that differ by a multiple of it share a slot, others do not; a slot keeps what was stored until replaced")
    func slotsAreChosenByHash() {
        #expect(DirectMappedTable<Int>(slotCount: 0).slotCount == 1)
        #expect(DirectMappedTable<Int>(slotCount: 3).slotCount == 4)
        #expect(DirectMappedTable<Int>(slotCount: 512).slotCount == 512)
        let table = DirectMappedTable<Int>(slotCount: 8)
        for hash in 0..<8 { table.withSlot(hash: hash) { $0 = hash } }
        for hash in 0..<8 { #expect(table.withSlot(hash: hash) { $0 } == hash) }
        // -1 & 7 == 7, 8 & 7 == 0: negative and large hashes land in range.
        #expect(table.withSlot(hash: -1) { $0 } == 7)
        #expect(table.withSlot(hash: 8 + 3) { $0 } == 3)
        table.withSlot(hash: 16 + 5) { $0 = 99 }
        #expect(table.withSlot(hash: 5) { $0 } == 99)
        #expect(table.withSlot(hash: 4) { $0 } == 4)
    }
}
