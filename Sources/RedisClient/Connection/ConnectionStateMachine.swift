package import NIOCore

/// One connection's lifecycle and in-flight command queue, as a value type that returns actions.
///
/// States: **handshaking** (only the handshake — `AUTH`, `SELECT`, `CLIENT SETNAME`, `INFO`,
/// written as one pipeline, so their order on the wire is fixed by construction — may be sent),
/// **active**, **closing** (no new commands; those in flight still get their replies, then the
/// channel closes) and **closed**.
///
/// Replies arrive in the order commands were written (RESP2 is strictly FIFO), so the queue is a
/// ring buffer. The handler feeds it events (a command to send, a reply, a timer firing, a
/// cancellation, a close request, the channel closing) and carries out the returned action; it
/// never decides anything itself.
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
        /// For `SUNSUBSCRIBE channel` in subscribe mode: the channel whose `sunsubscribe` array
        /// answers it. Redis also sends that array unasked when the channel's slot leaves the node,
        /// so it is a reply only when the command at the head of the queue expects it.
        package var confirmsShardUnsubscribe: String?
    }

    private enum State {
        case handshaking
        case active
        case closing
        case closed(RedisError)
    }

    /// Why a command is sent: the handshake may only be sent while handshaking, and commands only once active.
    package enum Purpose: Sendable {
        case handshake
        case command
    }

    private var state: State
    private var pending = CommandQueue<Pending>(initialCapacity: 64)
    /// Whether replies that look like pub/sub pushes are routed to the push handler.
    package var pubSubMode = false

    /// A machine for a new connection: in the handshaking state when `handshake` is true (the
    /// connection sends its handshake before anything else), else active at once.
    package init(handshake: Bool = false) {
        state = handshake ? .handshaking : .active
    }

    /// How many commands are awaiting a reply.
    package var inFlight: Int { pending.count }

    package enum SendAction {
        case write
        case fail(Continuation, RedisError)
    }

    /// Queues a command (`replies` = 1) or a pipeline of `replies` commands answered together.
    /// `confirmsShardUnsubscribe` names the channel of a `SUNSUBSCRIBE` sent in subscribe mode.
    package mutating func send(
        id: UInt64, deadline: NIODeadline, continuation: Continuation, replies: Int = 1, purpose: Purpose = .command,
        confirmsShardUnsubscribe: String? = nil
    ) -> SendAction {
        switch (state, purpose) {
        case (.handshaking, .handshake), (.active, .command):
            pending.append(Pending(id: id, deadline: deadline, continuation: continuation, expected: replies, confirmsShardUnsubscribe: confirmsShardUnsubscribe))
            return .write
        case (.handshaking, .command):
            return .fail(continuation, RedisError(code: .connection, message: "the connection has not finished its handshake"))
        case (.active, .handshake):
            return .fail(continuation, RedisError(code: .protocolError, message: "the handshake was already sent"))
        case (.closing, _):
            return .fail(continuation, RedisError(code: .shutdown, message: "the connection is closing; it takes no new commands"))
        case (.closed(let error), _):
            return .fail(continuation, error)
        }
    }

    /// The handshake's replies were all good: commands may be sent.
    package mutating func handshakeSucceeded() {
        if case .handshaking = state { state = .active }
    }

    package enum CloseAction {
        /// Nothing is in flight: close the channel now.
        case closeNow
        /// Commands are in flight: close when the last reply arrives (``isDrained``).
        case drain
        /// Already closing or closed.
        case none
    }

    /// A graceful close: take no new commands, let those in flight finish.
    package mutating func closeGracefully() -> CloseAction {
        switch state {
        case .handshaking, .active:
            if pending.isEmpty { return .closeNow }
            state = .closing
            return .drain
        case .closing, .closed:
            return .none
        }
    }

    /// Closing, and the last command in flight was answered: close the channel.
    package var isDrained: Bool {
        if case .closing = state { return pending.isEmpty }
        return false
    }

    package enum ReplyAction {
        case succeed(Continuation, RESPValue)
        case failServer(Continuation, String)
        case discard
        case push(RESPValue)
        case protocolViolation(RedisError)
    }

    package mutating func received(_ value: RESPValue) -> ReplyAction {
        if case .closed = state { return .discard }
        if pubSubMode, Self.isPush(value) || isUnaskedShardUnsubscribe(value) { return .push(value) }
        // The head is modified in place and moved out when answered (``CommandQueue``): no reply
        // copies its queue entry.
        let pipelineComplete = pending.modifyFirst { head -> Bool in
            guard head.expected > 1 else { return true }
            // A pipeline: gather replies (errors stay in place as `.error`) until all have arrived.
            head.gathered.append(value)
            return head.gathered.count >= head.expected
        }
        switch pipelineComplete {
        case nil:
            return .protocolViolation(RedisError(code: .protocolError, message: "received a reply (\(value)) that no command asked for"))
        case false?:
            return .discard
        case true?:
            let head = pending.removeFirst()
            guard let continuation = head.continuation else { return .discard }
            if head.expected > 1 { return .succeed(continuation, .array(head.gathered)) }
            if case .error(let message) = value { return .failServer(continuation, message) }
            return .succeed(continuation, value)
        }
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
        pending.minimum(of: { $0.deadline })
    }

    package mutating func timerFired(now: NIODeadline, timeoutDescription: (Pending) -> String) -> TimerAction {
        if case .closed = state { return .rearm(nil) }
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
        if case .closed = state { return [] }
        state = .closed(error)
        return pending.removeAll().compactMap(\.continuation)
    }

    /// Whether commands may be sent now.
    package var isActive: Bool {
        if case .active = state { return true }
        return false
    }

    /// Whether the connection is closed (or closing).
    package var isClosedOrClosing: Bool {
        switch state {
        case .closing, .closed: return true
        case .handshaking, .active: return false
        }
    }

    /// `message`/`smessage`/`pmessage` arrays, and `pong` from PING in subscribe mode goes to its command.
    private static func isPush(_ value: RESPValue) -> Bool {
        guard case .array(let items) = value, let kind = items.first?.string else { return false }
        return ((kind == "message" || kind == "smessage") && items.count == 3) || (kind == "pmessage" && items.count == 4)
    }

    /// A `sunsubscribe` array that no `SUNSUBSCRIBE` at the head of the queue is waiting for: the
    /// server dropped the channel itself (its slot moved to another node, or this node became a
    /// replica).
    private func isUnaskedShardUnsubscribe(_ value: RESPValue) -> Bool {
        guard case .array(let items) = value, items.count == 3, items[0].string == "sunsubscribe" else { return false }
        guard let expected = pending.withFirst({ $0.confirmsShardUnsubscribe }) ?? nil else { return true }
        return items[1].string != expected
    }
}
