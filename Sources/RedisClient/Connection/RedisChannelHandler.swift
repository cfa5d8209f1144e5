package import Logging
package import NIOCore

/// Reads replies with hiredis, matches them to commands in FIFO order, enforces deadlines.
///
/// Lives on one event loop; every method runs there. The decisions are made by
/// ``ConnectionStateMachine``; this class only carries out its actions.
package final class RedisChannelHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer
    package typealias Continuation = ReplyReceiver

    private var stateMachine: ConnectionStateMachine<Continuation>
    private let reader: HiredisReader
    private var context: ChannelHandlerContext?
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private let logger: Logger
    /// Receives pub/sub messages when the connection is in subscribe mode.
    package var onPush: ((RESPValue) -> Void)?
    /// Called once when the connection closes, with the reason.
    package var onClose: ((RedisError) -> Void)?
    private var closeReason: RedisError?
    /// Set (before any waiting caller is resumed) when the connection is finished, so a caller
    /// retrying at once never picks this connection again while its channel is still closing.
    package let closedFlag = ClosedFlag()
    /// Describes a TLS error (e.g. the server's alert that it wants a client certificate, which in
    /// TLS 1.3 arrives after the handshake) in the user's terms; `nil` on plaintext connections.
    private let describeTLSError: ((any Error) -> RedisError)?

    /// - Parameter handshake: the connection sends a handshake first (see ``ConnectionStateMachine``).
    package init(logger: Logger, replyLimits: RESPReplyLimits = RESPReplyLimits(), handshake: Bool = false, describeTLSError: ((any Error) -> RedisError)? = nil) {
        self.describeTLSError = describeTLSError
        self.logger = logger
        self.reader = HiredisReader(limits: replyLimits)
        self.stateMachine = ConnectionStateMachine(handshake: handshake)
    }

    package var inFlight: Int { stateMachine.inFlight }

    package func enterPubSubMode() { stateMachine.pubSubMode = true }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timer?.cancel()
    }

    // MARK: Outbound

    /// Queues `command` for writing; the reply (or failure) resumes `continuation`.
    package func send(
        _ command: ByteBuffer, id: UInt64, deadline: NIODeadline, continuation: Continuation, replies: Int = 1,
        purpose: ConnectionStateMachine<Continuation>.Purpose = .command, confirmsShardUnsubscribe: String? = nil
    ) {
        guard let context, context.channel.isActive else {
            continuation.resume(throwing: closeReason ?? RedisError(code: .connection, message: "the connection is closed"))
            return
        }
        switch stateMachine.send(
            id: id, deadline: deadline, continuation: continuation, replies: replies, purpose: purpose,
            confirmsShardUnsubscribe: confirmsShardUnsubscribe
        ) {
        case .fail(let continuation, let error):
            continuation.resume(throwing: error)
        case .write:
            context.write(wrapOutboundOut(command), promise: nil)
            armTimer(for: deadline)
            scheduleFlush(context)
        }
    }

    /// Gathers every command written in this event-loop tick into one flush (one syscall).
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            self.context?.flush()
        }
    }

    package func cancel(id: UInt64) {
        if case .failCancelled(let continuation) = stateMachine.cancel(id: id) {
            continuation.resume(throwing: RedisError(code: .cancelled, message: "the task was cancelled; the command may still run on the server"))
        }
    }

    /// The handshake's replies were checked and good: commands may be sent.
    package func handshakeSucceeded() {
        stateMachine.handshakeSucceeded()
    }

    /// Closes the connection, failing waiting callers with `error`.
    package func close(_ error: RedisError) {
        failAll(error)
        context?.close(promise: nil)
    }

    /// Takes no new commands, lets those in flight get their replies (each within its deadline),
    /// then closes.
    package func closeGracefully() {
        switch stateMachine.closeGracefully() {
        case .closeNow: close(RedisError(code: .connection, message: "the connection was closed by the client"))
        case .drain, .none: break
        }
    }

    // MARK: Inbound

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try reader.feed(bytes)
            while let value = try reader.next() {
                switch stateMachine.received(value) {
                case .succeed(let continuation, let value):
                    continuation.resume(returning: value)
                case .failServer(let continuation, let message):
                    continuation.resume(throwing: RedisError(code: .server, message: message))
                case .discard:
                    break
                case .push(let value):
                    onPush?(value)
                case .protocolViolation(let error):
                    logger.error("closing Redis connection", metadata: ["error": "\(error.message)"])
                    close(error)
                    return
                }
            }
        } catch {
            logger.error("closing Redis connection after a reader error", metadata: ["error": "\(error.message)"])
            close(error)
            return
        }
        if stateMachine.isDrained {
            close(RedisError(code: .connection, message: "the connection was closed by the client"))
            return
        }
        // Replies that have arrived are delivered first, even past their deadline (a process that
        // was paused, or a loop that was busy, must not discard answers already received). A reply
        // still arriving does not extend its command's deadline: a server that trickles a huge
        // reply must not keep the caller past its timeout.
        if let deadline = timerDeadline, deadline <= .now() {
            timer?.cancel()
            timerFired()
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(code: .connection, message: "the connection was closed by the server or the network"))
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let describeTLSError, TLSFailure.isTLSError(error) {
            close(describeTLSError(error))
            return
        }
        close(RedisError(code: .connection, message: "\(error)"))
    }

    private func failAll(_ error: RedisError) {
        closedFlag.set()
        if closeReason == nil { closeReason = error }
        let waiting = stateMachine.close(error)
        timer?.cancel()
        timer = nil
        for continuation in waiting { continuation.resume(throwing: error) }
        if let onClose {
            self.onClose = nil
            onClose(error)
        }
    }

    // MARK: Deadlines

    private func armTimer(for deadline: NIODeadline) {
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        guard let context else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.timerFired()
        }
    }

    private func timerFired() {
        // The loop fired the timer for `timerDeadline`: by the loop's clock that deadline has come
        // (a testing loop's clock runs apart from the wall clock).
        let now = max(NIODeadline.now(), timerDeadline ?? .now())
        timer = nil
        timerDeadline = nil
        let action = stateMachine.timerFired(now: now) { pending in
            "no reply within the command timeout; the connection is discarded because later replies can no longer be matched"
        }
        switch action {
        case .rearm(let deadline):
            if let deadline { armTimer(for: deadline) }
        case .timedOut(let continuation, let error):
            logger.warning("Redis command timed out; closing the connection", metadata: ["in_flight": "\(stateMachine.inFlight)"])
            closedFlag.set()  // before anyone is resumed: a caller retrying at once must not pick this connection
            continuation?.resume(throwing: error)
            close(RedisError(code: .connection, message: "the connection was discarded after another command on it timed out"))
        }
    }
}
