import NIOCore
import RedisClient

/// The Redis names of recently read keys: their ``EntryKeys`` and their `GET` already encoded as
/// RESP, so a lookup of a hot key builds no strings and encodes no command.
///
/// A direct-mapped table of ``slotCount`` slots chosen by the key's hash: a key evicts whichever
/// key shared its slot, so the table holds at most ``slotCount`` keys and costs the same whatever
/// the workload (no eviction policy to run, nothing to sweep). A slot answers only for its exact
/// key and generation; a key read for the first time (or after a namespace invalidation changed
/// the generation) is built as before and remembered. Each slot has its own lock, so callers on
/// different keys do not wait for each other.
final class RecentEntryKeys: Sendable {
    /// How many keys are remembered at most.
    static let slotCount = 256

    /// A key's names in one generation.
    struct Names: Sendable {
        var key: String
        var generation: Int64
        var entry: EntryKeys
        /// `GET <value key>`, encoded.
        var get: ByteBuffer
    }

    private let slots = DirectMappedTable<Names>(slotCount: RecentEntryKeys.slotCount)
    private let keySpace: KeySpace

    init(keySpace: KeySpace) {
        self.keySpace = keySpace
    }

    /// `key`'s entry keys in `generation` and its encoded `GET`.
    /// - Throws: ``CacheError/invalidKey(_:reason:)`` for a key the key space refuses.
    func names(for key: String, generation: Int64) throws(CacheError) -> (EntryKeys, ByteBuffer) {
        let hash = key.hashValue
        if let known = slots.withSlot(hash: hash, { names -> (EntryKeys, ByteBuffer)? in
            // Byte for byte: two strings Swift calls equal may differ in bytes, and so in Redis keys.
            guard let names, names.generation == generation, names.key.utf8.elementsEqual(key.utf8) else { return nil }
            return (names.entry, names.get)
        }) {
            return known
        }
        let entry = try keySpace.entry(key, generation: generation)
        var get = ByteBufferAllocator().buffer(capacity: RESPEncoder.encodedSize("GET", argumentBytes: entry.value.utf8.count))
        RESPEncoder.write("GET", entry.value, into: &get)
        slots.withSlot(hash: hash) { $0 = Names(key: key, generation: generation, entry: entry, get: get) }
        return (entry, get)
    }
}
