import Foundation
import Synchronization

/// Values that ``CacheValueCoding`` types decoded recently, with the stored bytes they came from, so
/// a hot key's hits decode its entry once rather than on every read (a 1.2 KB LLM completion costs
/// 5–9 µs to decode, more than the rest of a hit's work in the cache).
///
/// A remembered value answers only for the same type and the same bytes, compared in full: what
/// it returns is what decoding those bytes gave. That holds because ``CacheValueCoding`` asks
/// `init(cacheJSON:)` to be a function of the bytes alone (the conformance's documented contract).
/// Only value types are remembered, so no two callers ever share an object; `Codable` types
/// without the conformance, classes, and entries over ``maximumBytes`` are decoded every time.
///
/// A direct-mapped table of ``slotCount`` slots chosen by the key's hash (a key evicts whichever
/// key shared its slot; each slot has its own lock): at most ``slotCount`` × ``maximumBytes`` of
/// bytes and their decoded values are held.
final class RecentDecodedValues: Sendable {
    /// How many values are remembered at most.
    static let slotCount = 256
    /// The largest entry whose value is remembered, in bytes.
    static let maximumBytes = 16 << 10

    private struct Entry: @unchecked Sendable {
        // `@unchecked`: `value` is always a `T: Sendable` (stored by `decode`, read back with `as? T`);
        // `any Sendable` would make every read a dynamic cast through an existential of a protocol.
        var type: ObjectIdentifier
        var bytes: [UInt8]
        var value: Any
    }

    private let slots = DirectMappedTable<Entry>(slotCount: RecentDecodedValues.slotCount)
    private let decodes = Atomic<Int>(0)

    /// How many entries were decoded (not answered from the table) so far.
    var decodeCount: Int { decodes.load(ordering: .relaxed) }

    /// The `T` stored as `bytes` under `key`: remembered, or decoded (``StoredJSON/decode(_:from:)``).
    /// - Throws: what decoding throws; a failed decode is not remembered.
    func decode<T: Decodable & Sendable>(_ type: T.Type, key: String, from bytes: [UInt8]) throws -> T {
        guard bytes.count <= Self.maximumBytes, T.self is any CacheValueCoding.Type, !(T.self is AnyClass) else {
            decodes.add(1, ordering: .relaxed)
            return try StoredJSON.decode(T.self, from: bytes)
        }
        let hash = key.hashValue
        let identifier = ObjectIdentifier(T.self)
        if let known = slots.withSlot(hash: hash, { entry -> T? in
            guard let entry, entry.type == identifier, Self.same(entry.bytes, bytes) else { return nil }
            return entry.value as? T
        }) {
            return known
        }
        decodes.add(1, ordering: .relaxed)
        let value = try StoredJSON.decode(T.self, from: bytes)
        let entry = Entry(type: identifier, bytes: bytes, value: value)
        slots.withSlot(hash: hash) { $0 = entry }
        return value
    }

    private static func same(_ first: [UInt8], _ second: [UInt8]) -> Bool {
        guard first.count == second.count else { return false }
        return first.withUnsafeBytes { a in
            second.withUnsafeBytes { b in
                guard let x = a.baseAddress, let y = b.baseAddress else { return true }
                return memcmp(x, y, a.count) == 0
            }
        }
    }
}
