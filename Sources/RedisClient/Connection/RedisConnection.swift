public import Logging
public import NIOCore
import NIOPosix
import Synchronization

/// One TCP or unix-socket connection to Redis that any number of tasks share.
///
/// Commands are written as they arrive and their replies are matched in FIFO order, so concurrent
/// callers pipeline over one socket. Commands issued in the same event-loop tick go out in one
/// flush. Each command has a deadline; on timeout the caller gets ``RedisError/Code/timeout`` and the
/// connection is closed, because later replies can no longer be matched to their commands.
///
/// Most code uses ``RedisClient``, which keeps a pool of these and reconnects them.
public final class RedisConnection: Sendable {
    /// The event loop that owns the socket. Tasks that run on it (see ``RedisClient/taskExecutor``)
    /// send and receive without a thread hop.
    public let eventLoop: any EventLoop
    package let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    private let closedFlag: ClosedFlag
    private let nextID = Atomic<UInt64>(0)
    private let commandTimeout: TimeAmount
    private let allocator: ByteBufferAllocator

    /// Whether this connection is leased exclusively (``RedisClient/withConnection(_:)``): a
    /// cancelled command then closes it, so a blocking command cannot complete for nobody.
    package let exclusive: Bool

    private init(channel: any Channel, handler: NIOLoopBound<RedisChannelHandler>, closedFlag: ClosedFlag, commandTimeout: Duration, exclusive: Bool) {
        self.channel = channel
        self.closedFlag = closedFlag
        self.eventLoop = channel.eventLoop
        self.handler = handler
        self.commandTimeout = TimeAmount(commandTimeout)
        self.allocator = channel.allocator
        self.exclusive = exclusive
    }

    /// Opens a connection and performs the handshake: `AUTH`, `SELECT`, `CLIENT SETNAME` as configured.
    ///
    /// - Throws: ``RedisError`` with code `.connection` or `.timeout` if the socket can't be opened,
    ///   `.authentication` if Redis refuses the credentials (message verbatim), `.configuration` for bad settings.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger
    ) async throws(RedisError) -> RedisConnection {
        try await connect(configuration: configuration, eventLoop: eventLoop, logger: logger, exclusive: false)
    }

    package static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        exclusive: Bool
    ) async throws(RedisError) -> RedisConnection {
        try configuration.validate()
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(TimeAmount(configuration.connectTimeout))
        let channel: any Channel
        do {
            switch configuration.endpoint {
            case .tcp(let host, let port):
                channel = try await bootstrap
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch let error as ChannelError where error == .connectTimeout(TimeAmount(configuration.connectTimeout)) {
            throw RedisError(code: .timeout, message: "connecting to \(configuration.endpoint) took longer than \(configuration.connectTimeout)")
        } catch {
            throw RedisError(code: .connection, message: "cannot connect to \(configuration.endpoint): \(error)")
        }
        return try await connect(channel: channel, configuration: configuration, logger: logger, exclusive: exclusive)
    }

    /// Sets up the Redis handler on an already connected `channel` and performs the handshake (the
    /// one path for sockets and for channel-level tests on `NIOAsyncTestingChannel`).
    package static func connect(
        channel: any Channel,
        configuration: RedisConfiguration,
        logger: Logger,
        exclusive: Bool = false
    ) async throws(RedisError) -> RedisConnection {
        let handler: NIOLoopBound<RedisChannelHandler>
        let closedFlag: ClosedFlag
        do {
            (handler, closedFlag) = try await channel.eventLoop.submit {
                let handler = RedisChannelHandler(logger: logger, replyLimits: configuration.replyLimits, handshake: true)
                try channel.pipeline.syncOperations.addHandler(handler)
                return (NIOLoopBound(handler, eventLoop: channel.eventLoop), handler.closedFlag)
            }.get()
        } catch {
            channel.close(promise: nil)
            throw RedisError(code: .connection, message: "the connection closed during setup: \(error)")
        }
        let connection = RedisConnection(channel: channel, handler: handler, closedFlag: closedFlag, commandTimeout: configuration.commandTimeout, exclusive: exclusive)
        do {
            try await connection.handshake(configuration)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// The refusal for a Redis Cluster node: this client does not route commands by hash slot yet,
    /// so two keys in three would fail with `MOVED`.
    static let clusterRefusal = "this Redis is a Redis Cluster node (INFO cluster: cluster_enabled:1); this client does not route commands by hash slot yet, so most keys would fail with MOVED. Connect to a standalone Redis (or the primary a Sentinel names) until cluster support lands"

    /// The handshake commands, in the order they must run.
    package static func handshakeCommands(_ configuration: RedisConfiguration) -> [(command: RedisCommand, isAuth: Bool)] {
        var commands: [(RedisCommand, isAuth: Bool)] = []
        if let password = configuration.password {
            if let user = configuration.username {
                commands.append((RedisCommand("AUTH", RedisArgument(user), RedisArgument(password)), true))
            } else {
                commands.append((RedisCommand("AUTH", RedisArgument(password)), true))
            }
        }
        if configuration.database != 0 { commands.append((RedisCommand("SELECT", RedisArgument(configuration.database)), false)) }
        if let name = configuration.clientName { commands.append((RedisCommand("CLIENT", "SETNAME", RedisArgument(name)), false)) }
        // Last: refuse a cluster node up front (an ACL that denies INFO is not an error).
        commands.append((RedisCommand("INFO", "cluster"), false))
        return commands
    }

    private func handshake(_ configuration: RedisConfiguration) async throws(RedisError) {
        // One write, one pipeline: AUTH before SELECT before CLIENT SETNAME by construction, one
        // round trip. The state machine accepts nothing else until the replies are checked.
        let commands = Self.handshakeCommands(configuration)
        let encoded = try HiredisEncoder.encode(pipeline: commands.map(\.command), allocator: allocator)
        let reply: RESPValue
        do {
            reply = try await send(encoded: encoded, timeout: commandTimeout, replies: commands.count, purpose: .handshake)
        } catch where error.code == .server && commands.count == 1 {
            reply = .error(error.message)  // a single command's error reply is thrown, not gathered
        }
        let replies = commands.count == 1 ? [reply] : (reply.array ?? [])
        guard replies.count == commands.count else {
            throw RedisError(code: .protocolError, message: "the handshake expected \(commands.count) replies, got \(reply)")
        }
        for (index, reply) in replies.enumerated() {
            let isInfo = index == commands.count - 1
            if case .error(let message) = reply {
                if isInfo { continue }  // e.g. NOPERM: INFO not allowed
                throw RedisError(code: commands[index].isAuth ? .authentication : .server, message: message)
            }
            if isInfo, let info = reply.string, info.contains("cluster_enabled:1") {
                throw RedisError(code: .configuration, message: Self.clusterRefusal)
            }
        }
        let handler = self.handler
        if eventLoop.inEventLoop {
            handler.value.handshakeSucceeded()
        } else {
            do {
                try await eventLoop.submit { handler.value.handshakeSucceeded() }.get()
            } catch {
                throw RedisError(code: .connection, message: "the connection closed during the handshake: \(error)")
            }
        }
    }

    /// Sends one command and waits for its reply.
    ///
    /// - Parameter timeout: overrides the configured command timeout for this command.
    /// - Returns: the reply. An error reply is thrown as ``RedisError`` with code `.server` and
    ///   Redis's message verbatim.
    /// - Throws: ``RedisError``: `.timeout`, `.connection` (the command may or may not have run),
    ///   `.server`, `.cancelled` (the command may still run on the server).
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        let encoded = try HiredisEncoder.encode(command, allocator: allocator)
        return try await send(encoded: encoded, timeout: timeout.map(TimeAmount.init) ?? commandTimeout)
    }

    /// Sends several commands in one write and returns their replies in order, with one wake-up.
    /// Error replies stay in the array as ``RESPValue/error(_:)``; they are not thrown.
    public func send(pipeline commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        let encoded = try HiredisEncoder.encode(pipeline: commands, allocator: allocator)
        if commands.count == 1 {
            do {
                return [try await send(encoded: encoded, timeout: timeout.map(TimeAmount.init) ?? commandTimeout, replies: commands.count)]
            } catch where error.code == .server {
                return [.error(error.message)]
            }
        }
        let reply = try await send(encoded: encoded, timeout: timeout.map(TimeAmount.init) ?? commandTimeout, replies: commands.count)
        return reply.array ?? [reply]
    }

    package func send(
        encoded: ByteBuffer, timeout: TimeAmount, replies: Int = 1,
        purpose: ConnectionStateMachine<RedisChannelHandler.Continuation>.Purpose = .command
    ) async throws(RedisError) -> RESPValue {
        if Task.isCancelled { throw RedisError(code: .cancelled, message: "the task was cancelled before the command was sent") }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let deadline = NIODeadline.now() + timeout
        let handler = self.handler
        let eventLoop = self.eventLoop
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RESPValue, any Error>) in
                    if eventLoop.inEventLoop {
                        handler.value.send(encoded, id: id, deadline: deadline, continuation: continuation, replies: replies, purpose: purpose)
                    } else {
                        eventLoop.execute {
                            handler.value.send(encoded, id: id, deadline: deadline, continuation: continuation, replies: replies, purpose: purpose)
                        }
                    }
                }
            } onCancel: { [exclusive] in
                if exclusive {
                    // A leased connection may be blocked in BLPOP / XREAD BLOCK: close it, so the
                    // server cannot hand an element to a caller that is gone.
                    eventLoop.execute { handler.value.close(RedisError(code: .cancelled, message: "the task was cancelled; the leased connection was closed so the command cannot complete for nobody")) }
                } else {
                    eventLoop.execute { handler.value.cancel(id: id) }
                }
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "\(error)")
        }
    }

    /// Whether the connection takes commands: its socket is open and it has not failed or been closed
    /// (a connection discarded after a timeout reads as inactive at once, before its socket is closed).
    public var isActive: Bool { !closedFlag.isSet && channel.isActive }

    /// Puts the connection into subscribe mode and routes `message`/`pmessage` replies to `onPush`
    /// (called on the event loop). `onClose` is called once, on the event loop, when the connection closes.
    package func setHandlers(onPush: (@Sendable (RESPValue) -> Void)?, onClose: @escaping @Sendable (RedisError) -> Void) async {
        let handler = self.handler
        let isClosed: Bool
        do {
            isClosed = try await eventLoop.submit {
                if let onPush {
                    handler.value.enterPubSubMode()
                    handler.value.onPush = onPush
                }
                handler.value.onClose = onClose
                return false
            }.get()
        } catch {
            isClosed = true
        }
        if isClosed || !channel.isActive { onClose(RedisError(code: .connection, message: "the connection closed")) }
    }

    /// Closes after the commands in flight got their replies (each within its own deadline); new
    /// commands are refused meanwhile with ``RedisError/Code/shutdown``.
    package func closeGracefully() async {
        await requestGracefulClose()
        try? await channel.closeFuture.get()
    }

    /// Starts a graceful close and returns once the connection refuses new commands (tests).
    package func requestGracefulClose() async {
        let handler = self.handler
        try? await eventLoop.submit { handler.value.closeGracefully() }.get()
    }

    /// Closes the connection. Commands still waiting fail with ``RedisError/Code/connection``. Never hangs.
    public func close() async {
        let handler = self.handler
        eventLoop.execute {
            handler.value.close(RedisError(code: .connection, message: "the connection was closed by the client"))
        }
        try? await channel.closeFuture.get()
    }
}
