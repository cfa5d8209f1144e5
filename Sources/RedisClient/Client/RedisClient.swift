public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// An async Redis client: a small pool of pipelined connections, with reconnects, timeouts,
/// scripts and pub/sub.
///
/// ```swift
/// let client = try RedisClient(url: "redis://localhost:6379", logger: logger)
/// try await client.set("greeting", to: "hello")
/// let value = try await client.get("greeting")   // ByteBuffer?
/// await client.close()
/// ```
///
/// All connections of one client live on one event loop, so a task that prefers
/// ``taskExecutor`` talks to Redis without thread hops. Any number of tasks may share a client;
/// their commands are pipelined. A command on a dropped connection fails with
/// ``RedisError/Code/connection`` and is **not** retried (it may have run); the next command
/// reconnects, with exponential backoff and jitter after failed attempts.
///
/// `RedisClient` is a swift-service-lifecycle `Service`: ``run()`` waits for graceful shutdown,
/// then closes the client.
public final class RedisClient: Sendable, Service {
    /// The configuration the client was created with.
    public let configuration: RedisConfiguration
    /// The event loop all of this client's connections run on.
    public let eventLoop: any EventLoop
    /// Run latency-critical tasks on this executor to avoid thread hops (see ``EventLoopTaskExecutor``).
    public let taskExecutor: EventLoopTaskExecutor
    package let logger: Logger
    let metrics: ClientMetrics
    private let slots: [ConnectionSlot]
    private let nextSlot = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)
    private let subscriberBox = Mutex<RedisSubscriber?>(nil)
    private let shardSubscriberBox = Mutex<ShardedSubscriber?>(nil)
    private let exclusive: ExclusiveConnections
    /// 0: not decided yet (``RedisConfiguration/Deployment/automatic`` before the first
    /// connection), 1: standalone, 2: cluster.
    private let mode: Atomic<UInt8>
    /// Slot map, per-node pools and redirects; used only in cluster mode.
    let router: ClusterRouter
    /// Where the primary is, through Sentinel (`nil` otherwise).
    let sentinel: SentinelResolver?

    /// Creates a client. No connection is made until the first command.
    ///
    /// - Parameters:
    ///   - configuration: where and how to connect; validated here.
    ///   - eventLoopGroup: the group to take one event loop from (default: NIO's shared singleton).
    ///   - metricsLabel: the `client` dimension of this client's metrics.
    ///   - logger: where the client logs; it never prints.
    /// - Throws: ``RedisError/Code/configuration`` if the configuration is invalid.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsLabel: String = "default",
        logger: Logger = Logger(label: "RedisClient")
    ) throws(RedisError) {
        try configuration.validate()
        self.configuration = configuration
        let eventLoop = eventLoopGroup.next()
        self.eventLoop = eventLoop
        self.taskExecutor = EventLoopTaskExecutor(eventLoop: eventLoop)
        self.logger = logger
        let metrics = ClientMetrics(label: metricsLabel)
        self.metrics = metrics
        var resolver: SentinelResolver?
        if case .sentinel(let sentinels, let masterName, let password) = configuration.deployment {
            resolver = SentinelResolver(configuration: configuration, sentinels: sentinels, masterName: masterName, password: password,
                                        eventLoop: eventLoop, logger: logger, metrics: metrics)
        }
        self.sentinel = resolver
        let slots = (0..<configuration.poolSize).map { _ in
            ConnectionSlot(configuration: configuration, eventLoop: eventLoop, logger: logger, metrics: metrics, resolver: resolver)
        }
        self.slots = slots
        _ = resolver?.switchObservers.add {
            // Connections to the old primary would go on answering reads and refuse writes.
            Task { for slot in slots { await slot.reset() } }
        }
        self.exclusive = ExclusiveConnections(configuration: configuration, eventLoop: eventLoop, logger: logger, resolver: resolver)
        switch configuration.deployment {
        case .automatic, .sentinel:
            mode = Atomic(resolver == nil ? 0 : 1)
            router = ClusterRouter(configuration: configuration, seeds: [configuration.endpoint], eventLoop: eventLoop, logger: logger, metrics: metrics)
        case .cluster(let seeds):
            mode = Atomic(2)
            router = ClusterRouter(configuration: configuration, seeds: seeds, eventLoop: eventLoop, logger: logger, metrics: metrics)
        }
    }

    /// Whether this client talks to a Redis Cluster (decided at the first command when the
    /// deployment is ``RedisConfiguration/Deployment/automatic``).
    public func isCluster() async throws(RedisError) -> Bool {
        switch mode.load(ordering: .relaxed) {
        case 1: return false
        case 2: return true
        default:
            guard !closed.load(ordering: .relaxed) else { throw RedisError(code: .shutdown, message: "the client was closed") }
            let connection = try await pickSlot().connection()
            if connection.isClusterNode {
                if mode.compareExchange(expected: 0, desired: 2, ordering: .relaxed).exchanged {
                    logger.info("the server is a Redis Cluster node: routing commands by hash slot", metadata: ["seed": "\(configuration.endpoint)"])
                }
                return true
            }
            mode.store(1, ordering: .relaxed)
            return false
        }
    }

    /// Whether the mode is already known to be cluster (no I/O).
    var isKnownCluster: Bool { mode.load(ordering: .relaxed) == 2 }

    /// ``isCluster()``'s answer when it is already known, without I/O or suspension; `nil` before
    /// the first connection told.
    package var knownClusterMode: Bool? {
        switch mode.load(ordering: .relaxed) {
        case 1: return false
        case 2: return true
        default: return nil
        }
    }

    /// Creates a client from a URL such as `redis://:password@host:6379/0` or `unix:///run/redis.sock`.
    ///
    /// - Throws: ``RedisError/Code/configuration`` naming the malformed part of the URL.
    public convenience init(
        url: String,
        clientName: String? = nil,
        poolSize: Int = 2,
        commandTimeout: Duration = .seconds(5),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsLabel: String = "default",
        logger: Logger = Logger(label: "RedisClient")
    ) throws(RedisError) {
        var configuration = try RedisConfiguration(url: url)
        if let clientName { configuration.clientName = clientName }
        configuration.poolSize = poolSize
        configuration.commandTimeout = commandTimeout
        try self.init(configuration: configuration, eventLoopGroup: eventLoopGroup, metricsLabel: metricsLabel, logger: logger)
    }

    /// Sends one command on a pooled connection and returns its reply.
    ///
    /// - Parameter timeout: overrides ``RedisConfiguration/commandTimeout`` for this command.
    /// - Throws: ``RedisError``. An error reply from Redis is thrown with code `.server` and its text verbatim.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        if mode.load(ordering: .relaxed) != 1, try await isCluster() { return try await clusterSend(command, timeout: timeout) }
        let encoded = RESPEncoder.encode(command)
        return try await send(encoded: encoded, timeout: timeout)
    }

    /// Sends a command given as its name and arguments: `try await client.send("HSET", "h", "f", "v")`.
    @discardableResult
    public func send(_ name: String, _ arguments: RedisArgument..., timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        try await send(RedisCommand(name, arguments), timeout: timeout)
    }

    /// Sends several commands in one write on one connection and returns their replies in order.
    ///
    /// Cheaper than awaiting them one by one: one write, one wake-up. Error replies stay in the
    /// returned array as ``RESPValue/error(_:)`` (each command succeeds or fails on its own; this is
    /// not a transaction).
    public func send(pipeline commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        if mode.load(ordering: .relaxed) != 1, try await isCluster() { return try await clusterPipeline(commands, timeout: timeout) }
        guard !commands.isEmpty else { throw RedisError(code: .configuration, message: "a pipeline needs at least one command") }
        let encoded = RESPEncoder.encode(pipeline: commands)
        if commands.count == 1 {
            do {
                return [try await send(encoded: encoded, timeout: timeout, replies: commands.count)]
            } catch where error.code == .server {
                return [.error(error.message)]
            }
        }
        let reply = try await send(encoded: encoded, timeout: timeout, replies: commands.count)
        return reply.array ?? [reply]
    }

    /// Sends `first` (already encoded, e.g. a constant command) and `second` in one write; returns both replies.
    package func send(preEncoded first: ByteBuffer, then second: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> (RESPValue, RESPValue) {
        if mode.load(ordering: .relaxed) != 1, try await isCluster() { return try await clusterSend(preEncoded: first, then: second, timeout: timeout) }
        var buffer = first
        var encoded = RESPEncoder.encode(second)
        buffer.writeBuffer(&encoded)
        let reply = try await send(encoded: buffer, timeout: timeout, replies: 2)
        guard case .array(let replies) = reply, replies.count == 2 else {
            throw RedisError(code: .protocolError, message: "expected 2 replies, got \(reply)")
        }
        return (replies[0], replies[1])
    }

    /// Sends `encoded` (`replies` commands) on a pooled connection and waits for the reply.
    /// `followUp` is called exactly once, on every path (also when nothing could be sent), on the
    /// connection's event loop when a reply or failure arrives there (see ``ReplyFollowUp``).
    package func send(encoded: ByteBuffer, timeout: Duration?, replies: Int = 1, followUp: (any ReplyFollowUp)? = nil) async throws(RedisError) -> RESPValue {
        let start = ContinuousClock.now
        metrics.commands.increment()
        do throws(RedisError) {
            guard !closed.load(ordering: .relaxed) else {
                followUp?.replyDelivered()
                throw RedisError(code: .shutdown, message: "the client was closed")
            }
            let slot = pickSlot()
            let connection: RedisConnection
            if let live = slot.liveConnection {
                connection = live
            } else {
                do throws(RedisError) {
                    connection = try await slot.connection()
                } catch {
                    followUp?.replyDelivered()
                    throw error
                }
            }
            let reply: RESPValue
            do throws(RedisError) {
                reply = try await connection.send(encoded: encoded, timeout: TimeAmount(timeout ?? configuration.commandTimeout), replies: replies, followUp: followUp)
            } catch where error.code == .server && error.message.hasPrefix("READONLY") {
                // The node is a replica now: the command did not run. Through Sentinel, find the
                // primary and send it there once; otherwise say so with a typed error.
                guard let sentinel else { throw RedisError(code: .readOnly, message: error.message) }
                sentinel.invalidate()
                await slot.reset(connection)
                let fresh = try await slot.connection()
                reply = try await fresh.send(encoded: encoded, timeout: TimeAmount(timeout ?? configuration.commandTimeout), replies: replies)
            }
            metrics.duration.recordNanoseconds((ContinuousClock.now - start).nanosecondsClamped)
            return reply
        } catch {
            metrics.recordError(error.code)
            throw error
        }
    }

    /// Sends `encoded` (`replies` commands) on a pooled connection and calls `onReply` with the
    /// reply or the failure on the client's event loop, with no task waiting and no thread hop, so
    /// the callback can send the next command from the loop. When no connection is live yet, a
    /// task connects first; a command that cannot be sent (closed client, failed connect) fails at
    /// once, on the calling thread or that task. Standalone and Sentinel deployments only (no
    /// cluster routing); not cancellable, bounded by the command timeout.
    package func send(encoded: ByteBuffer, replies: Int = 1, onReply: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        let start = ContinuousClock.now
        metrics.commands.increment()
        let metrics = self.metrics
        let measured: @Sendable (Result<RESPValue, RedisError>) -> Void = { result in
            switch result {
            case .success: metrics.duration.recordNanoseconds((ContinuousClock.now - start).nanosecondsClamped)
            case .failure(let error): metrics.recordError(error.code)
            }
            onReply(result)
        }
        guard !closed.load(ordering: .relaxed) else {
            measured(.failure(RedisError(code: .shutdown, message: "the client was closed")))
            return
        }
        let slot = pickSlot()
        if let live = slot.liveConnection {
            live.send(encoded: encoded, replies: replies, onReply: measured)
            return
        }
        Task {
            do throws(RedisError) {
                let connection = try await slot.connection()
                connection.send(encoded: encoded, replies: replies, onReply: measured)
            } catch {
                measured(.failure(error))
            }
        }
    }

    /// Leases a connection that no other task uses until `body` returns: for `MULTI`/`EXEC`,
    /// `WATCH`, and blocking commands (`BLPOP`, `XREAD BLOCK`, ...). The shared pipelined
    /// connections are never used for these.
    ///
    /// ```swift
    /// let replies = try await client.withConnection { connection in
    ///     try await connection.send(pipeline: [RedisCommand("MULTI"), RedisCommand("INCR", "a"), RedisCommand("INCR", "b"), RedisCommand("EXEC")])
    /// }
    /// ```
    ///
    /// If the task is cancelled while a command waits on the leased connection, the connection is
    /// closed (a blocked `BLPOP` cannot then pop an element for nobody) and the command fails with
    /// ``RedisError/Code/cancelled``. A lease that ends by throwing closes its connection; one that
    /// ends normally returns it for the next lease (up to ``RedisConfiguration/poolSize`` are kept).
    /// Give blocking commands a `timeout` longer than the block.
    public func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisConnection) async throws -> sending T
    ) async throws -> sending T {
        guard !closed.load(ordering: .relaxed) else { throw RedisError(code: .shutdown, message: "the client was closed") }
        let connection = try await exclusive.lease()
        do {
            let result = try await body(connection)
            await exclusive.giveBack(connection, reusable: true)
            return result
        } catch {
            await exclusive.giveBack(connection, reusable: false)
            throw error
        }
    }

    /// Like ``withConnection(isolation:_:)``, on the node that serves `key`: on a cluster, a new
    /// connection to the primary of `key`'s hash slot (closed when `body` returns), so a blocking
    /// command such as `XREAD BLOCK` on `key` does not get `MOVED`; elsewhere, a leased connection.
    /// A slot that moves while `body` runs makes its commands fail with `MOVED` (``RedisError``):
    /// lease again.
    public func withConnection<T>(
        routedBy key: String,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisConnection) async throws -> sending T
    ) async throws -> sending T {
        guard !closed.load(ordering: .relaxed) else { throw RedisError(code: .shutdown, message: "the client was closed") }
        guard mode.load(ordering: .relaxed) != 1, try await isCluster() else { return try await withConnection(isolation: isolation, body) }
        var nodeConfiguration = configuration
        nodeConfiguration.endpoint = try await router.endpoint(forSlot: HashSlot.of(key))
        let connection = try await RedisConnection.connect(configuration: nodeConfiguration, eventLoop: eventLoop, logger: logger, exclusive: true)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    private func pickSlot() -> ConnectionSlot {
        if slots.count == 1 { return slots[0] }
        let index = nextSlot.add(1, ordering: .relaxed).newValue
        return slots[index % slots.count]
    }

    /// The process-wide subscriber connection of this client (created on first use).
    public var subscriber: RedisSubscriber {
        subscriberBox.withLock { box in
            if let existing = box { return existing }
            let router = self.router
            let sentinel = self.sentinel
            let created = RedisSubscriber(configuration: configuration, eventLoop: eventLoop, logger: logger, metrics: metrics) { (attempt) throws(RedisError) in
                // Through Sentinel: the primary (PUBLISH reaches its subscribers); on a cluster: any
                // known primary (PUBLISH reaches every node); else the configured endpoint.
                if let sentinel { return try await sentinel.primary() }
                return router.subscriberEndpoint(attempt: attempt)
            }
            box = created
            return created
        }
    }

    /// Sharded pub/sub for this client (created on first use): on a cluster, one subscriber
    /// connection per primary, each channel on the node serving its slot; on one server, the
    /// ``subscriber`` connection.
    public var shardSubscriber: ShardedSubscriber {
        shardSubscriberBox.withLock { box in
            if let existing = box { return existing }
            let created = ShardedSubscriber(
                configuration: configuration, eventLoop: eventLoop, logger: logger, metrics: metrics, router: router,
                isCluster: { [weak self] () throws(RedisError) -> Bool in
                    guard let self else { throw RedisError(code: .shutdown, message: "the client was closed") }
                    return try await self.isCluster()
                },
                standalone: { [weak self] in self?.subscriber }
            )
            _ = router.mapObservers.add { [weak created] in created?.reconcile() }
            box = created
            return created
        }
    }

    /// Closes every connection. Waiting commands fail with ``RedisError/Code/connection`` or
    /// ``RedisError/Code/shutdown``; later commands fail with `.shutdown`. Idempotent; never hangs.
    public func close() async {
        await shutdown(graceful: false)
    }

    private func shutdown(graceful: Bool) async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        for slot in slots { await slot.shutdown(graceful: graceful) }
        await exclusive.close()
        await router.close(graceful: graceful)
        await sentinel?.close()
        let shardSubscriber = shardSubscriberBox.withLock { $0 }
        await shardSubscriber?.close()
        let subscriber = subscriberBox.withLock { $0 }
        await subscriber?.close()
    }

    /// Runs until graceful shutdown is triggered (swift-service-lifecycle), then closes the client:
    /// new commands fail with ``RedisError/Code/shutdown`` while the commands already in flight get
    /// their replies (each within its command timeout). Cancellation closes at once.
    public func run() async throws {
        do {
            try await gracefulShutdown()
            await shutdown(graceful: true)
        } catch {
            await shutdown(graceful: false)
        }
    }
}
