/// The answers of commit.
package enum CommitReply: Sendable, Equatable {
    case accepted(freshUntil: Int64, staleUntil: Int64, now: Int64)
    case rejected(reason: String, currentFence: Int64)
}
