package import NIOCore

/// The in-flight command queue of one connection, as a value type that returns actions.
///
/// Replies arrive in the order commands were written (RESP2 is strictly FIFO), so the queue is a
/// ring buffer. The handler feeds it events (a command to send, a reply, a timer firing, a
/// cancellation, the channel closing) and carries out the returned action; it never decides
/// anything itself.
package struct ConnectionStateMachine<Continuation> {
    package struct Pending {
        package var id: UInt64
        package var deadline: NIODeadline
        /// `nil` once the caller was answered early (cancelled); the reply is then discarded.
        package var continuation: Continuation?
        /// How many replies this entry waits for: 1 for a command, N for a pipeline of N commands.
        package var expected: Int = 1
        /// Replies gathered so far for a pipeline.
        package var gathered: [RESPValue] = []
    }

    private enum State {
        case open
        case closed(RedisError)
    }

    private var state: State = .open
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    /// Whether replies that look like pub/sub pushes are routed to the push handler.
    package var pubSubMode = false

    package init() {}

    /// How many commands are awaiting a reply.
    package var inFlight: Int { pending.count }

    package enum SendAction {
        case write
        case fail(Continuation, RedisError)
    }

    /// Queues a command (`replies` = 1) or a pipeline of `replies` commands answered together.
    package mutating func send(id: UInt64, deadline: NIODeadline, continuation: Continuation, replies: Int = 1) -> SendAction {
        switch state {
        case .open:
            pending.append(Pending(id: id, deadline: deadline, continuation: continuation, expected: replies))
            return .write
        case .closed(let error):
            return .fail(continuation, error)
        }
    }

    package enum ReplyAction {
        case succeed(Continuation, RESPValue)
        case failServer(Continuation, String)
        case discard
        case push(RESPValue)
        case protocolViolation(RedisError)
    }

    package mutating func received(_ value: RESPValue) -> ReplyAction {
        guard case .open = state else { return .discard }
        if pubSubMode, Self.isPush(value) { return .push(value) }
        guard var head = pending.first else {
            return .protocolViolation(RedisError(code: .protocolError, message: "received a reply (\(value)) that no command asked for"))
        }
        if head.expected > 1 {
            // A pipeline: gather replies (errors stay in place as `.error`) until all have arrived.
            head.gathered.append(value)
            if head.gathered.count < head.expected {
                pending[pending.startIndex] = head
                return .discard
            }
            pending.removeFirst()
            guard let continuation = head.continuation else { return .discard }
            return .succeed(continuation, .array(head.gathered))
        }
        pending.removeFirst()
        guard let continuation = head.continuation else { return .discard }
        if case .error(let message) = value { return .failServer(continuation, message) }
        return .succeed(continuation, value)
    }

    package enum TimerAction {
        /// Nothing expired; arm the timer for this deadline (or leave it unarmed when `nil`).
        case rearm(NIODeadline?)
        /// A command expired: fail it with a timeout, then close the connection (the reply stream
        /// is now ambiguous), failing the others.
        case timedOut(Continuation?, RedisError)
    }

    /// The earliest deadline among the in-flight commands.
    package var earliestDeadline: NIODeadline? {
        pending.lazy.map(\.deadline).min()
    }

    package mutating func timerFired(now: NIODeadline, timeoutDescription: (Pending) -> String) -> TimerAction {
        guard case .open = state else { return .rearm(nil) }
        if let index = pending.firstIndex(where: { $0.deadline <= now }) {
            let expired = pending[index]
            pending[index].continuation = nil
            let error = RedisError(code: .timeout, message: timeoutDescription(expired))
            return .timedOut(expired.continuation, error)
        }
        return .rearm(earliestDeadline)
    }

    package enum CancelAction {
        case failCancelled(Continuation)
        case none
    }

    /// The caller gave up: answer it now; the reply, when it comes, is read and dropped.
    package mutating func cancel(id: UInt64) -> CancelAction {
        guard let index = pending.firstIndex(where: { $0.id == id }), let continuation = pending[index].continuation else {
            return .none
        }
        pending[index].continuation = nil
        return .failCancelled(continuation)
    }

    /// The channel closed or is being closed: every waiting caller fails with `error`.
    package mutating func close(_ error: RedisError) -> [Continuation] {
        guard case .open = state else { return [] }
        state = .closed(error)
        let waiting = pending.compactMap(\.continuation)
        pending.removeAll()
        return waiting
    }

    package var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    /// `message`/`pmessage` arrays, and `pong` from PING in subscribe mode goes to its command.
    private static func isPush(_ value: RESPValue) -> Bool {
        guard case .array(let items) = value, let kind = items.first?.string else { return false }
        return (kind == "message" && items.count == 3) || (kind == "pmessage" && items.count == 4)
    }
}
