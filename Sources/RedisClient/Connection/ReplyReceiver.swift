/// Who receives a command's reply: a task waiting for it, or a callback the connection's event loop
/// runs.
///
/// A callback lets a caller react to a reply on the event loop itself (the cache's read batcher
/// sends its next batch from there, with no thread hop between one batch's reply and the next
/// batch's write). Exactly one of `resume(returning:)` / `resume(throwing:)` is called, once: the
/// ``ConnectionStateMachine`` hands each receiver out once.
package enum ReplyReceiver: Sendable {
    /// A task suspended until the reply arrives, and what to do (on the loop) just before it is resumed.
    case task(CheckedContinuation<RESPValue, any Error>, followUp: (any ReplyFollowUp)?)
    /// Called on the connection's event loop (or, for a command that could not be queued, on the
    /// thread that tried to send it).
    case callback(@Sendable (Result<RESPValue, RedisError>) -> Void)

    /// Delivers the reply.
    func resume(returning value: RESPValue) {
        switch self {
        case .task(let continuation, let followUp):
            followUp?.replyDelivered()
            continuation.resume(returning: value)
        case .callback(let callback): callback(.success(value))
        }
    }

    /// Delivers the failure.
    func resume(throwing error: RedisError) {
        switch self {
        case .task(let continuation, let followUp):
            followUp?.replyDelivered()
            continuation.resume(throwing: error)
        case .callback(let callback): callback(.failure(error))
        }
    }
}
