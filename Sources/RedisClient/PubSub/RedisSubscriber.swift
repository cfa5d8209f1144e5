import Logging
public import NIOCore
import Synchronization

/// A message or event delivered to a subscription.
public enum RedisPubSubEvent: Sendable, Hashable {
    /// A message published to a subscribed channel (or one matching a subscribed pattern).
    case message(RedisPubSubMessage)
    /// The subscriber connection dropped and was re-established, and every subscription was restored.
    /// Messages published while it was down **may have been missed**: re-check any state you were waiting on.
    case reconnected
    /// This subscription's buffer was full (its consumer fell behind by
    /// ``RedisSubscriber/bufferLimit`` events): its oldest events were discarded, `dropped` of them
    /// messages. Treat it like ``reconnected``: re-check any state you were waiting on.
    case overflow(dropped: Int)
}

/// One published message.
public struct RedisPubSubMessage: Sendable, Hashable {
    /// The channel it was published to.
    public var channel: String
    /// The pattern that matched, for pattern subscriptions.
    public var pattern: String?
    /// The payload, binary-safe.
    public var payload: ByteBuffer

    /// A message (public so tests and adapters can build expected values).
    public init(channel: String, pattern: String? = nil, payload: ByteBuffer) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }
}

/// The stream of one subscription. Iterate it; stop iterating (or drop it) to unsubscribe.
public struct RedisSubscription: AsyncSequence, Sendable {
    /// Elements are messages and reconnect notices.
    public typealias Element = RedisPubSubEvent
    let stream: AsyncStream<RedisPubSubEvent>

    /// An iterator over the events.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<RedisPubSubEvent>.AsyncIterator
        /// The next event, or `nil` after the subscriber was closed.
        public mutating func next() async -> RedisPubSubEvent? { await base.next() }
    }

    /// Makes the iterator.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}

/// A dedicated subscriber connection shared by every subscription of one client.
///
/// Subscribing to the same channel twice shares one `SUBSCRIBE`; the last subscription to go
/// away sends `UNSUBSCRIBE`. When the connection drops, the subscriber reconnects with backoff,
/// restores every channel and pattern, and sends ``RedisPubSubEvent/reconnected`` to every
/// subscription, because messages published meanwhile may have been missed.
public final class RedisSubscriber: Sendable {
    /// Where one subscription's events go: an `AsyncStream` (public API) or a callback (package
    /// API, for listeners that must not need a task of their own).
    private struct Listener: Sendable {
        var deliver: @Sendable (RedisPubSubEvent) -> Void
        var finish: @Sendable () -> Void
    }

    private typealias Machine = SubscriptionStateMachine<Listener, CheckedContinuation<Void, any Error>>
    private typealias Kind = Machine.Kind
    private typealias Name = Machine.Name

    private struct State {
        /// Per channel and pattern: listeners, what the server has, what is in flight.
        var machine = Machine()
        /// The live connection and the generation of the machine it serves.
        var connection: (connection: RedisConnection, generation: UInt64)?
        var connecting: Task<RedisConnection, any Error>?
        var nextID: UInt64 = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let configuration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let metrics: ClientMetrics
    /// Picks the node of each connection attempt (on a cluster, a known primary: classic pub/sub
    /// reaches every node, and after a failover the next attempt goes to a live one); `nil` uses
    /// the configured endpoint.
    private let endpointProvider: (@Sendable (Int) async throws(RedisError) -> RedisConfiguration.Endpoint?)?
    private let connectAttempts = Atomic<Int>(0)

    /// Whether a lost connection is re-established and a channel the server dropped is subscribed
    /// again here. A cluster node's subscriber (``ShardedSubscriber``) does neither: its channels
    /// belong wherever their slots are now, so it reports them through `onDisplaced` instead.
    private let resubscribesItself: Bool
    /// Receives the shard channels this subscriber can no longer serve (see `resubscribesItself`).
    private let onDisplaced: (@Sendable ([String]) -> Void)?

    init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, metrics: ClientMetrics,
         endpointProvider: (@Sendable (Int) async throws(RedisError) -> RedisConfiguration.Endpoint?)? = nil,
         onDisplaced: (@Sendable ([String]) -> Void)? = nil) {
        self.endpointProvider = endpointProvider
        self.resubscribesItself = onDisplaced == nil
        self.onDisplaced = onDisplaced
        var configuration = configuration
        if let name = configuration.clientName { configuration.clientName = name + "-sub" }
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
    }

    /// Subscribes to channels; returns once Redis confirmed every `SUBSCRIBE`.
    public func subscribe(to channels: [String]) async throws(RedisError) -> RedisSubscription {
        try await add(channels, kind: .channel)
    }

    /// Subscribes to glob-style patterns (`PSUBSCRIBE`); returns once Redis confirmed them.
    public func subscribe(toPatterns patterns: [String]) async throws(RedisError) -> RedisSubscription {
        try await add(patterns, kind: .pattern)
    }

    /// How many undelivered events a subscription stream holds before it drops the oldest and
    /// reports ``RedisPubSubEvent/overflow(dropped:)``.
    public static let bufferLimit = 10_000

    private func add(_ names: [String], kind: Kind) async throws(RedisError) -> RedisSubscription {
        let (stream, continuation) = AsyncStream<RedisPubSubEvent>.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferLimit))
        let deliver = Self.boundedDelivery(into: continuation)
        let id = try await add(names, kind: kind, listener: Listener(deliver: deliver, finish: { continuation.finish() }))
        continuation.onTermination = { [weak self] _ in self?.remove(id: id, names: names, kind: kind) }
        return RedisSubscription(stream: stream)
    }

    /// A delivery function into a bounded stream: a full buffer drops its oldest event, and the
    /// consumer is told, in the stream itself and with the next event, how many messages it lost
    /// (never silently). A dropped overflow notice hands its count on to the next one.
    static func boundedDelivery(into continuation: AsyncStream<RedisPubSubEvent>.Continuation) -> @Sendable (RedisPubSubEvent) -> Void {
        let unreported = Mutex<(messages: Int, any: Bool)>((0, false))
        return { event in
            func account(_ result: AsyncStream<RedisPubSubEvent>.Continuation.YieldResult) {
                guard case .dropped(let lost) = result else { return }
                unreported.withLock { state in
                    state.any = true
                    switch lost {
                    case .message: state.messages += 1
                    case .overflow(let count): state.messages += count
                    case .reconnected: break
                    }
                }
            }
            let pending = unreported.withLock { state -> Int? in
                defer { state = (0, false) }
                return state.any ? state.messages : nil
            }
            if let pending { account(continuation.yield(.overflow(dropped: pending))) }
            account(continuation.yield(event))
        }
    }

    /// Subscribes `handler` to `channels` and returns once Redis confirmed every `SUBSCRIBE`.
    ///
    /// The handler runs on the subscriber connection's event loop for every message and for
    /// ``RedisPubSubEvent/reconnected``; it must not block. `onEnd` runs once when the subscriber is
    /// closed. No task is needed to consume anything: this is for long-lived listeners that a
    /// library shares among many users of one client. Remove it with ``unsubscribe(listener:from:)``.
    /// - Returns: the listener's id.
    /// With `shard` the channels are shard channels (`SSUBSCRIBE`; on a cluster they must all be
    /// served by this subscriber's node — ``ShardedSubscriber`` sees to it).
    package func subscribe(
        to channels: [String],
        shard: Bool = false,
        handler: @escaping @Sendable (RedisPubSubEvent) -> Void,
        onEnd: @escaping @Sendable () -> Void
    ) async throws(RedisError) -> UInt64 {
        try await add(channels, kind: shard ? .shardChannel : .channel, listener: Listener(deliver: handler, finish: onEnd))
    }

    /// How many listeners (streams and handlers) `channel` (a shard channel with `shard`) has in this process.
    package func listenerCount(channel: String, shard: Bool = false) -> Int {
        state.withLock { $0.machine.listenerCount(of: Name(shard ? .shardChannel : .channel, channel)) }
    }

    /// Removes a listener added with ``subscribe(to:shard:handler:onEnd:)``; the last listener of a
    /// channel to go sends `UNSUBSCRIBE` (`SUNSUBSCRIBE` with `shard`).
    package func unsubscribe(listener id: UInt64, from channels: [String], shard: Bool = false) {
        remove(id: id, names: channels, kind: shard ? .shardChannel : .channel)
    }

    /// Whether no listener is left here (a cluster node's subscriber is closed then).
    package var isIdle: Bool { state.withLock { $0.machine.wantedNames.isEmpty } }

    /// `SUBSCRIBE`/`UNSUBSCRIBE` commands sent and not yet answered (tests).
    package var commandsInFlight: Int { state.withLock { $0.machine.commandsInFlight } }

    private func add(_ names: [String], kind: Kind, listener: Listener) async throws(RedisError) -> UInt64 {
        guard !names.isEmpty else { throw RedisError(code: .configuration, message: "subscribe needs at least one channel or pattern") }
        _ = try await connectedConnection()
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let keys = names.map { Name(kind, $0) }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (admission, commands, closed) = state.withLock { state -> (Machine.Admission, [Machine.Command], Bool) in
                    if state.closed { return (.ready, [], true) }
                    let (admission, commands) = state.machine.add(id: id, listener: listener, to: keys, waiter: continuation)
                    return (admission, commands, false)
                }
                if closed {
                    continuation.resume(throwing: RedisError(code: .shutdown, message: "the subscriber was closed"))
                    return
                }
                if admission == .ready { continuation.resume() }
                send(commands)
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "\(error)")
        }
        return id
    }

    /// Sends what the state machine asked for, each on the connection of its generation; the answer
    /// goes back to the machine. Commands of one channel are never in flight together (the machine
    /// sees to it), so the order in which these tasks run cannot reorder them.
    private func send(_ commands: [Machine.Command]) {
        guard !commands.isEmpty else { return }
        let connection = state.withLock { state -> RedisConnection? in
            guard let current = state.connection, current.generation == state.machine.generation else { return nil }
            return current.connection
        }
        for command in commands {
            guard let connection, connection.isActive else {
                confirm(command, error: RedisError(code: .connection, message: "the subscriber connection was lost before \(command.verb) \(command.name.name) was sent"))
                continue
            }
            Task {
                do {
                    let unsubscribesShard = command.name.kind == .shardChannel && !command.subscribe
                    _ = try await connection.sendSubscription(
                        RedisCommand(command.verb, RedisArgument(command.name.name)),
                        confirmsShardUnsubscribe: unsubscribesShard ? command.name.name : nil
                    )
                    self.confirm(command, error: nil)
                } catch let error as RedisError {
                    self.confirm(command, error: error)
                } catch {
                    self.confirm(command, error: RedisError(code: .connection, message: "\(error)"))
                }
            }
        }
    }

    /// Feeds an answer to the state machine and carries out what it decides.
    private func confirm(_ command: Machine.Command, error: RedisError?) {
        let (resume, next) = state.withLock { $0.machine.confirmed(command, error: error) }
        for (waiter, failure) in resume {
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume() }
        }
        send(next)
    }

    private func remove(id: UInt64, names: [String], kind: Kind) {
        let commands = state.withLock { state in
            state.closed ? [] : state.machine.remove(id: id, from: names.map { Name(kind, $0) })
        }
        send(commands)
    }

    /// The live subscriber connection, connecting (once, shared) if needed.
    private func connectedConnection() async throws(RedisError) -> RedisConnection {
        let task: Task<RedisConnection, any Error> = try state.withLock { (state) throws(RedisError) in
            if state.closed { throw RedisError(code: .shutdown, message: "the subscriber was closed") }
            if let current = state.connection, current.connection.isActive { return Task { current.connection } }
            if let connecting = state.connecting { return connecting }
            let task = Task { try await self.connectAndInstall(isReconnect: false) }
            state.connecting = task
            return task
        }
        do {
            return try await task.value
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "\(error)")
        }
    }

    private func connectAndInstall(isReconnect: Bool) async throws -> RedisConnection {
        do {
            var configuration = self.configuration
            if let endpoint = try await endpointProvider?(connectAttempts.add(1, ordering: .relaxed).newValue - 1) {
                configuration.endpoint = endpoint
            }
            let connection = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger)
            // Keepalive: an idle subscriber connection that a proxy or NAT dropped without a FIN is
            // noticed by a PING that times out (which closes it, and the subscriber reconnects).
            let keepalive = eventLoop.scheduleRepeatedTask(
                initialDelay: TimeAmount(configuration.subscriberKeepalive), delay: TimeAmount(configuration.subscriberKeepalive)
            ) { [weak self] _ in
                guard connection.isActive else { return }
                self?.metrics.keepalivePings.increment()
                Task { _ = try? await connection.send(RedisCommand("PING")) }
            }
            await connection.setHandlers(
                onPush: { [weak self] value in self?.dispatch(value) },
                onClose: { [weak self] _ in
                    keepalive.cancel()
                    self?.connectionClosed(connection)
                }
            )
            let closed = state.withLock { state in
                state.connecting = nil
                if !state.closed { state.connection = (connection, state.machine.generation) }
                return state.closed
            }
            if closed { await connection.close() }
            return connection
        } catch {
            state.withLock { $0.connecting = nil }
            throw error
        }
    }

    private func dispatch(_ value: RESPValue) {
        guard case .array(let items) = value, let kind = items.first?.string else { return }
        let message: RedisPubSubMessage
        let name: Name
        if kind == "message" || kind == "smessage", items.count == 3, let channel = items[1].string, let payload = items[2].buffer {
            message = RedisPubSubMessage(channel: channel, pattern: nil, payload: payload)
            name = Name(kind == "message" ? .channel : .shardChannel, channel)
        } else if kind == "pmessage", items.count == 4, let pattern = items[1].string, let channel = items[2].string, let payload = items[3].buffer {
            message = RedisPubSubMessage(channel: channel, pattern: pattern, payload: payload)
            name = Name(.pattern, pattern)
        } else if kind == "sunsubscribe", items.count == 3, let channel = items[1].string {
            shardChannelDropped(channel)
            return
        } else {
            return
        }
        let listeners = state.withLock { $0.machine.listeners(of: name) }
        for listener in listeners { listener.deliver(.message(message)) }
    }

    /// The server unsubscribed a shard channel by itself: its slot moved away from this node, or
    /// the node became a replica. A standalone subscriber subscribes it again and tells its
    /// listeners to re-check; a cluster node's subscriber hands it to ``ShardedSubscriber``, which
    /// moves it to the slot's new node.
    private func shardChannelDropped(_ channel: String) {
        let name = Name(.shardChannel, channel)
        let (listeners, commands) = state.withLock { $0.machine.serverUnsubscribed(name, resubscribe: resubscribesItself) }
        guard !listeners.isEmpty else { return }
        metrics.shardChannelsMoved.increment()
        logger.debug("the server dropped a shard channel subscription", metadata: ["channel": "\(channel)"])
        if let onDisplaced {
            onDisplaced([channel])
            return
        }
        send(commands)
        for listener in listeners { listener.deliver(.reconnected) }
    }

    private func connectionClosed(_ connection: RedisConnection) {
        let lost = RedisError(code: .connection, message: "the subscriber connection was lost")
        let (shouldReconnect, failed) = state.withLock { state -> (Bool, [CheckedContinuation<Void, any Error>]) in
            guard state.connection?.connection === connection else { return (false, []) }
            state.connection = nil
            let failed = state.machine.connectionLost(lost)
            return (!state.closed && !state.machine.wantedNames.isEmpty, failed)
        }
        for waiter in failed { waiter.resume(throwing: lost) }
        if let onDisplaced {
            // A cluster node's subscriber: its channels go wherever their slots are now.
            let displaced = state.withLock { $0.machine.wantedNames.filter { $0.kind == .shardChannel }.map(\.name) }
            if !displaced.isEmpty { onDisplaced(displaced) }
            return
        }
        guard shouldReconnect else { return }
        logger.warning("Redis subscriber connection lost; reconnecting")
        Task { await self.reconnectLoop() }
    }

    private func reconnectLoop() async {
        var failures = 0
        while !state.withLock({ $0.closed }) {
            do {
                _ = try await connectedConnection()
                let id = state.withLock { state in
                    state.nextID += 1
                    return state.nextID
                }
                // Every channel and pattern with listeners is subscribed again; this returns once all are confirmed.
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let (admission, commands) = state.withLock { $0.machine.resubscribe(id: id, waiter: continuation) }
                    if admission == .ready { continuation.resume() }
                    send(commands)
                }
                let (names, everyone) = state.withLock { ($0.machine.wantedNames, $0.machine.everyListener) }
                metrics.resubscribes.increment()
                metrics.reconnects.increment()
                logger.info("Redis subscriber reconnected", metadata: [
                    "channels": "\(names.filter { $0.kind == .channel }.count)", "patterns": "\(names.filter { $0.kind == .pattern }.count)",
                ])
                for listener in everyone { listener.deliver(.reconnected) }
                return
            } catch {
                failures += 1
                metrics.connectFailures.increment()
                let delay = configuration.reconnectBackoff.delay(afterFailures: failures, random: Double.random(in: 0..<1))
                logger.debug("subscriber reconnect failed", metadata: ["error": "\(error)", "retry_in_ms": "\(delay.milliseconds)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Closes the subscriber; every subscription's stream ends.
    public func close() async {
        let (connection, waiters, listeners) = state.withLock { state in
            state.closed = true
            let (waiters, listeners) = state.machine.closeAll()
            let connection = state.connection?.connection
            state.connection = nil
            return (connection, waiters, listeners)
        }
        for waiter in waiters { waiter.resume(throwing: RedisError(code: .shutdown, message: "the subscriber was closed")) }
        for listener in listeners { listener.finish() }
        await connection?.close()
    }
}
