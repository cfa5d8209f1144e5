/// A short hash tag for each of the 16384 slots: `{<tag(forSlot: s)>}` puts a key or a shard
/// channel in slot `s`.
///
/// A script may only `SPUBLISH` to a shard channel in its own slot (Redis refuses "a non local key"
/// otherwise), so a notice about an entry goes to a channel carrying that entry's slot. Naming the
/// channel after the slot instead of the entry keeps the number of channels a process subscribes
/// bounded (one per slot it waits on) however many entries it waits for.
package enum SlotTag {
    /// The tag of `slot` (`0..<16384`): the decimal form of the smallest number whose CRC16 lands
    /// there, so every process computes the same channel names.
    package static func tag(forSlot slot: Int) -> String {
        precondition((0..<HashSlot.count).contains(slot), "a hash slot is 0..<16384")
        return table[slot]
    }

    /// Built once, on first use (about 170,000 CRC16s of short strings; a few milliseconds).
    private static let table: [String] = {
        var table = [String](repeating: "", count: HashSlot.count)
        var missing = HashSlot.count
        var candidate = 0
        while missing > 0 {
            let text = String(candidate)
            let slot = Int(HashSlot.crc16(text.utf8) & 0x3FFF)
            if table[slot].isEmpty {
                table[slot] = text
                missing -= 1
            }
            candidate += 1
        }
        return table
    }()
}
