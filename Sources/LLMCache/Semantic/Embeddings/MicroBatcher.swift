import Synchronization

/// Turns concurrent embedding requests into few upstream calls: texts submitted within
/// `maxWait` of the first one in a batch, or until `maxBatch` texts are waiting, go upstream as
/// one call; identical texts in a batch are sent once.
///
/// A batch is sent by a short task started by the submission that opened it (or filled it); each
/// call is bounded by the earliest deadline of the texts it carries, so no task outlives its
/// callers' deadlines by more than one upstream attempt.
final class MicroBatcher: Sendable {
    struct Submission {
        var text: String
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<EmbeddedText, any Error>
    }

    /// One text's vector and its share of the call's tokens.
    struct EmbeddedText: Sendable {
        var vector: [Float]
        var promptTokens: Int
    }

    private struct State {
        var pending: [Submission] = []
        var batchNumber: UInt64 = 0
    }

    let upstream: any EmbeddingsUpstream
    let maxBatch: Int
    let maxWait: Duration
    private let state = Mutex(State())
    /// Upstream calls made and texts sent in them (diagnostics and tests).
    let calls = Atomic<Int>(0)
    let textsSent = Atomic<Int>(0)

    init(upstream: any EmbeddingsUpstream, maxBatch: Int, maxWait: Duration) {
        self.upstream = upstream
        self.maxBatch = max(1, maxBatch)
        self.maxWait = max(.zero, maxWait)
    }

    func embed(_ text: String, deadline: ContinuousClock.Instant) async throws -> EmbeddedText {
        try await withCheckedThrowingContinuation { continuation in
            enum Step { case sendNow([Submission]), sendAfterWait(UInt64), nothing }
            let step: Step = state.withLock { state in
                state.pending.append(Submission(text: text, deadline: deadline, continuation: continuation))
                if state.pending.count >= maxBatch {
                    let batch = state.pending
                    state.pending = []
                    state.batchNumber &+= 1
                    return .sendNow(batch)
                }
                return state.pending.count == 1 ? .sendAfterWait(state.batchNumber) : .nothing
            }
            switch step {
            case .sendNow(let batch):
                Task { await self.send(batch) }
            case .sendAfterWait(let number):
                Task {
                    if self.maxWait > .zero { try? await Task.sleep(for: self.maxWait) }
                    let batch: [Submission] = self.state.withLock { state in
                        // A batch that filled up meanwhile was sent by the submission that filled it.
                        guard state.batchNumber == number else { return [] }
                        let batch = state.pending
                        state.pending = []
                        state.batchNumber &+= 1
                        return batch
                    }
                    if !batch.isEmpty { await self.send(batch) }
                }
            case .nothing:
                break
            }
        }
    }

    private func send(_ batch: [Submission]) async {
        var unique: [String] = []
        var position: [String: Int] = [:]
        for submission in batch where position[submission.text] == nil {
            position[submission.text] = unique.count
            unique.append(submission.text)
        }
        let deadline = batch.map(\.deadline).min() ?? ContinuousClock.now
        calls.add(1, ordering: .relaxed)
        textsSent.add(unique.count, ordering: .relaxed)
        do {
            let result = try await upstream.embed(unique, deadline: deadline)
            guard result.vectors.count == unique.count else {
                throw UpstreamError.malformedResponse("\(result.vectors.count) embeddings for \(unique.count) inputs")
            }
            let share = unique.isEmpty ? 0 : result.promptTokens / unique.count
            for submission in batch {
                submission.continuation.resume(returning: EmbeddedText(vector: result.vectors[position[submission.text]!], promptTokens: share))
            }
        } catch {
            for submission in batch { submission.continuation.resume(throwing: error) }
        }
    }
}
