import LLMCache
import StampedeCache
import NIOCore
import Synchronization

/// Response bodies rendered recently, so the hits on a hot answer within one second share one
/// rendering (the body carries `created`, the current second, so a rendering serves one second).
///
/// An entry answers only for an equal ``ChatCompletion`` (every field) and the same `created`:
/// the bytes are the ones ``CompletionJSON/completion(_:created:)`` writes for them. Comparing is
/// cheap for the hits it is for: a hot key's completion comes from one decoding, so its strings
/// share storage and compare by identity. A direct-mapped table of ``slotCount`` slots chosen by
/// the completion's id (each slot with its own lock); answers over ``maximumBytes`` are rendered
/// every time.
final class RecentRenderedCompletions: Sendable {
    /// How many bodies are remembered at most.
    static let slotCount = 64
    /// The largest body remembered, in bytes.
    static let maximumBytes = 16 << 10

    private struct Entry: Sendable {
        var completion: ChatCompletion
        var created: Int64
        var body: ByteBuffer
    }

    private let slots = DirectMappedTable<Entry>(slotCount: RecentRenderedCompletions.slotCount)
    private let renders = Atomic<Int>(0)

    /// How many bodies were rendered (not answered from the table).
    var renderCount: Int { renders.load(ordering: .relaxed) }

    /// The body of `completion` created at `created`.
    func body(for completion: ChatCompletion, created: Int64) -> ByteBuffer {
        let hash = completion.id.hashValue
        if let known = slots.withSlot(hash: hash, { entry -> ByteBuffer? in
            guard let entry, entry.created == created, entry.completion == completion else { return nil }
            return entry.body
        }) {
            return known
        }
        renders.add(1, ordering: .relaxed)
        let body = ByteBuffer(bytes: CompletionJSON.completion(completion, created: created))
        if body.readableBytes <= Self.maximumBytes {
            let entry = Entry(completion: completion, created: created, body: body)
            slots.withSlot(hash: hash) { $0 = entry }
        }
        return body
    }
}
