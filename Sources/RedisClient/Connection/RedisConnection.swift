public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
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
        guard let tls = configuration.tls else {
            let channel = try await openChannel(configuration: configuration, eventLoop: eventLoop, tls: nil)
            return try await connect(channel: channel, configuration: configuration, logger: logger, exclusive: exclusive)
        }
        let context = try TLSContextCache.context(for: tls)
        let serverName = Self.serverName(configuration.endpoint, tls: tls)
        if tls.verification == .insecureSkipVerification {
            logger.warning("TLS certificate verification is OFF (insecure-skip-verification): anyone on the network path can read and change this connection's traffic. Use it for self-signed test setups only", metadata: ["endpoint": "\(configuration.endpoint)"])
        }
        let record = TLSErrorRecord()
        let channel = try await openChannel(configuration: configuration, eventLoop: eventLoop, tls: (context, serverName, record))
        let describe: @Sendable (any Error) -> RedisError = { error in
            TLSFailure.error(error, endpoint: "\(configuration.endpoint)", tls: tls, serverName: serverName)
        }
        do {
            return try await connect(channel: channel, configuration: configuration, logger: logger, exclusive: exclusive, describeTLSError: describe)
        } catch {
            // A TLS alert right after the handshake (TLS 1.3: the server refusing our certificate,
            // or wanting one) explains the failure better than "the connection closed".
            if let tlsError = record.error { throw describe(tlsError) }
            throw error
        }
    }

    /// The name the server's certificate must carry (and the SNI): the configured one, else the
    /// host unless it is an IP address (which is then matched against the certificate's IP SANs).
    static func serverName(_ endpoint: RedisConfiguration.Endpoint, tls: RedisTLSConfiguration) -> String? {
        if let name = tls.serverName { return name }
        guard case .tcp(let host, _) = endpoint else { return nil }
        return (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// Connects the socket and, with `tls`, completes the TLS handshake (within the connect timeout).
    private static func openChannel(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        tls: (context: NIOSSLContext, serverName: String?, record: TLSErrorRecord)?
    ) async throws(RedisError) -> any Channel {
        let tlsReady = eventLoop.makePromise(of: Void.self)
        var bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(TimeAmount(configuration.connectTimeout))
        if let tls {
            bootstrap = bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(promise: tlsReady, record: tls.record))
                }
            }
        } else {
            tlsReady.succeed()
        }
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
            tlsReady.fail(error)
            throw RedisError(code: .timeout, message: "connecting to \(configuration.endpoint) took longer than \(configuration.connectTimeout)")
        } catch {
            tlsReady.fail(error)
            if let tlsSettings = configuration.tls, TLSFailure.isTLSError(error) {
                throw TLSFailure.error(error, endpoint: "\(configuration.endpoint)", tls: tlsSettings, serverName: tls?.serverName)
            }
            throw RedisError(code: .connection, message: "cannot connect to \(configuration.endpoint): \(error)")
        }
        guard let tls, let tlsSettings = configuration.tls else { return channel }
        // The TLS handshake gets what is left of the connect timeout's budget, measured afresh.
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.connectTimeout)) {
            tlsReady.fail(ChannelError.connectTimeout(TimeAmount(configuration.connectTimeout)))
        }
        do {
            try await tlsReady.futureResult.get()
            timeout.cancel()
            return channel
        } catch {
            timeout.cancel()
            try? await channel.close()
            if let channelError = error as? ChannelError, case .connectTimeout = channelError {
                throw RedisError(code: .timeout, message: "the TLS handshake with \(configuration.endpoint) got no answer within \(configuration.connectTimeout): the server may not speak TLS on this port (use redis:// for a plaintext port, or the port of the server's tls-port), or it is overloaded")
            }
            var certificate: NIOSSLCertificate?
            if "\(error)".contains("CERTIFICATE_VERIFY_FAILED") {
                certificate = await peerCertificate(configuration: configuration, eventLoop: eventLoop, serverName: tls.serverName)
            }
            throw TLSFailure.error(error, endpoint: "\(configuration.endpoint)", tls: tlsSettings, serverName: tls.serverName, certificate: certificate)
        }
    }

    /// The server's certificate as seen by a connection that does not verify it: only used to say
    /// *why* verification failed (expired, not yet valid, untrusted). Nothing is sent over it.
    private static func peerCertificate(configuration: RedisConfiguration, eventLoop: any EventLoop, serverName: String?) async -> NIOSSLCertificate? {
        guard var probe = configuration.tls else { return nil }
        probe.verification = .insecureSkipVerification
        probe.certificateFile = nil
        probe.privateKeyFile = nil
        guard let context = try? TLSContextCache.context(for: probe) else { return nil }
        var settings = configuration
        settings.tls = probe
        guard let channel = try? await openChannel(configuration: settings, eventLoop: eventLoop, tls: (context, serverName, TLSErrorRecord())) else { return nil }
        let certificate = try? await channel.nioSSL_peerCertificate().get()
        try? await channel.close()
        return certificate
    }

    /// Sets up the Redis handler on an already connected `channel` and performs the handshake (the
    /// one path for sockets and for channel-level tests on `NIOAsyncTestingChannel`).
    package static func connect(
        channel: any Channel,
        configuration: RedisConfiguration,
        logger: Logger,
        exclusive: Bool = false,
        describeTLSError: (@Sendable (any Error) -> RedisError)? = nil
    ) async throws(RedisError) -> RedisConnection {
        let handler: NIOLoopBound<RedisChannelHandler>
        let closedFlag: ClosedFlag
        do {
            (handler, closedFlag) = try await channel.eventLoop.submit {
                let handler = RedisChannelHandler(logger: logger, replyLimits: configuration.replyLimits, handshake: true, describeTLSError: describeTLSError)
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

    /// Whether the handshake's `INFO cluster` said `cluster_enabled:1`: ``RedisClient`` then
    /// switches to cluster mode (routing by hash slot).
    public var isClusterNode: Bool { clusterNode.load(ordering: .relaxed) }
    private let clusterNode = Atomic<Bool>(false)

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
        // Through Sentinel: the node must still be the primary (a sentinel may lag a failover).
        if case .sentinel = configuration.deployment { commands.append((RedisCommand("ROLE"), false)) }
        // Last: learn whether this is a cluster node (an ACL that denies INFO is not an error).
        commands.append((RedisCommand("INFO", "cluster"), false))
        return commands
    }

    private func handshake(_ configuration: RedisConfiguration) async throws(RedisError) {
        // One write, one pipeline: AUTH before SELECT before CLIENT SETNAME by construction, one
        // round trip. The state machine accepts nothing else until the replies are checked.
        let commands = Self.handshakeCommands(configuration)
        let encoded = RESPEncoder.encode(pipeline: commands.map(\.command), allocator: allocator)
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
        let checksRole: Bool
        if case .sentinel = configuration.deployment { checksRole = true } else { checksRole = false }
        for (index, reply) in replies.enumerated() {
            let isInfo = index == commands.count - 1
            if checksRole && index == commands.count - 2 {
                let role = reply.array?.first?.string ?? "\(reply)"
                if role != "master" {
                    throw RedisError(code: .readOnly, message: "\(configuration.endpoint) answers ROLE \(role), not master: the node Sentinel named is not the primary (yet); a failover is under way")
                }
                continue
            }
            if case .error(let message) = reply {
                if isInfo { continue }  // e.g. NOPERM: INFO not allowed
                throw RedisError(code: commands[index].isAuth ? .authentication : .server, message: message)
            }
            if isInfo, let info = reply.string, info.contains("cluster_enabled:1") {
                clusterNode.store(true, ordering: .relaxed)
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
        let encoded = RESPEncoder.encode(command, allocator: allocator)
        return try await send(encoded: encoded, timeout: timeout.map(TimeAmount.init) ?? commandTimeout)
    }

    /// Sends several commands in one write and returns their replies in order, with one wake-up.
    /// Error replies stay in the array as ``RESPValue/error(_:)``; they are not thrown.
    public func send(pipeline commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { throw RedisError(code: .configuration, message: "a pipeline needs at least one command") }
        let encoded = RESPEncoder.encode(pipeline: commands, allocator: allocator)
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

    /// Sends `encoded` (`replies` commands) and waits for the reply (an array for several).
    /// `followUp` is called exactly once, on every path, just before this call is answered
    /// (see ``ReplyFollowUp``).
    package func send(
        encoded: ByteBuffer, timeout: TimeAmount, replies: Int = 1,
        purpose: ConnectionStateMachine<RedisChannelHandler.Continuation>.Purpose = .command,
        confirmsShardUnsubscribe: String? = nil, followUp: (any ReplyFollowUp)? = nil
    ) async throws(RedisError) -> RESPValue {
        if Task.isCancelled {
            followUp?.replyDelivered()
            throw RedisError(code: .cancelled, message: "the task was cancelled before the command was sent")
        }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let deadline = NIODeadline.now() + timeout
        let handler = self.handler
        let eventLoop = self.eventLoop
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RESPValue, any Error>) in
                    if eventLoop.inEventLoop {
                        handler.value.send(encoded, id: id, deadline: deadline, continuation: .task(continuation, followUp: followUp), replies: replies, purpose: purpose, confirmsShardUnsubscribe: confirmsShardUnsubscribe)
                    } else {
                        eventLoop.execute {
                            handler.value.send(encoded, id: id, deadline: deadline, continuation: .task(continuation, followUp: followUp), replies: replies, purpose: purpose, confirmsShardUnsubscribe: confirmsShardUnsubscribe)
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

    /// Sends `encoded` (`replies` commands) and calls `onReply` with the reply (an array for a
    /// pipeline of several) or the failure, on this connection's event loop (at once, on the calling
    /// thread, if the connection is already closed). No task waits and nothing hops threads: for
    /// callers that react on the loop. Not cancellable; the command timeout bounds it. An error
    /// reply to a single command arrives as a `.server` failure, like ``send(_:timeout:)``'s.
    package func send(encoded: ByteBuffer, replies: Int = 1, timeout: TimeAmount? = nil, onReply: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let deadline = NIODeadline.now() + (timeout ?? commandTimeout)
        let handler = self.handler
        if eventLoop.inEventLoop {
            handler.value.send(encoded, id: id, deadline: deadline, continuation: .callback(onReply), replies: replies)
        } else {
            eventLoop.execute {
                handler.value.send(encoded, id: id, deadline: deadline, continuation: .callback(onReply), replies: replies)
            }
        }
    }

    /// Sends a subscribe-mode command. `SUNSUBSCRIBE channel` names its channel so that its reply is
    /// told apart from the `sunsubscribe` Redis sends unasked when the channel's slot moves.
    package func sendSubscription(_ command: RedisCommand, confirmsShardUnsubscribe channel: String?) async throws(RedisError) -> RESPValue {
        let encoded = RESPEncoder.encode(command, allocator: allocator)
        return try await send(encoded: encoded, timeout: commandTimeout, confirmsShardUnsubscribe: channel)
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
