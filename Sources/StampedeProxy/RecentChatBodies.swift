import Foundation
import LLMCache
import StampedeCache
import NIOCore
import Synchronization

/// The chat request bodies this proxy parsed recently, with what it derived from them
/// (``ParsedChatBody``), so a repeated request (a hit, most of the time) skips the JSON parse, the
/// canonical key and its SHA-256: about a fifth of a cached answer's CPU.
///
/// Parsing is a pure function of the body's bytes and the upstream's cache configuration, so a
/// remembered result is the one parsing would give again. An entry answers only for the same
/// tenant namespace, the same upstream and the same bytes, compared in full: one tenant can never
/// learn from response times whether another sent a body. A direct-mapped table of
/// ``slotCount`` slots chosen by a hash of all three (a body evicts whichever shared its slot,
/// each slot with its own lock); bodies over ``maximumBodyBytes`` are parsed every time, which
/// bounds the memory held to about ``slotCount`` × ``maximumBodyBytes`` of bodies plus their
/// parsed form.
final class RecentChatBodies: Sendable {
    /// How many bodies are remembered at most.
    static let slotCount = 512
    /// The largest body remembered, in bytes.
    static let maximumBodyBytes = 8 << 10

    private struct Entry: Sendable {
        var namespace: String
        var upstream: String
        var body: [UInt8]
        var parsed: ParsedChatBody
    }

    private let slots = DirectMappedTable<Entry>(slotCount: RecentChatBodies.slotCount)
    private let reused = Atomic<Int>(0)
    private let parsedCount = Atomic<Int>(0)

    /// How many bodies were answered from the table, and how many were parsed.
    var counts: (reused: Int, parsed: Int) { (reused.load(ordering: .relaxed), parsedCount.load(ordering: .relaxed)) }

    /// `bytes` parsed for `namespace` through `upstream`: remembered, or parsed by `parse` (and
    /// remembered when small enough). Errors are not remembered.
    func parsed(_ bytes: ByteBuffer, namespace: String, upstream: String, parse: (ByteBuffer) throws -> ParsedChatBody) rethrows -> ParsedChatBody {
        guard bytes.readableBytes <= Self.maximumBodyBytes else {
            parsedCount.add(1, ordering: .relaxed)
            return try parse(bytes)
        }
        var hasher = Hasher()
        hasher.combine(namespace)
        hasher.combine(upstream)
        bytes.withUnsafeReadableBytes { hasher.combine(bytes: $0) }
        let hash = hasher.finalize()
        let known = slots.withSlot(hash: hash) { entry -> ParsedChatBody? in
            // Byte for byte, namespace and upstream included (String == would accept canonically
            // equivalent but different names).
            guard let entry, entry.body.count == bytes.readableBytes,
                  entry.namespace.utf8.elementsEqual(namespace.utf8), entry.upstream.utf8.elementsEqual(upstream.utf8),
                  bytes.withUnsafeReadableBytes({ read in entry.body.withUnsafeBytes { Self.same($0, read) } })
            else { return nil }
            return entry.parsed
        }
        if let known {
            reused.add(1, ordering: .relaxed)
            return known
        }
        parsedCount.add(1, ordering: .relaxed)
        let parsed = try parse(bytes)
        let entry = Entry(namespace: namespace, upstream: upstream, body: Array(bytes.readableBytesView), parsed: parsed)
        slots.withSlot(hash: hash) { $0 = entry }
        return parsed
    }

    private static func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let first = a.baseAddress, let second = b.baseAddress else { return true }
        return memcmp(first, second, a.count) == 0
    }
}
