import Logging
import NIOCore
import Synchronization

/// What one pool slot is doing, as a value type that returns actions.
struct SlotStateMachine {
    typealias Waiter = CheckedContinuation<RedisConnection, any Error>

    enum State {
        case idle
        case connecting(waiters: [UInt64: Waiter])
        case connected(RedisConnection)
        case backingOff(until: NIODeadline, lastError: RedisError)
        case shutdown
    }

    private(set) var state: State = .idle
    private(set) var consecutiveFailures = 0
    private(set) var hasConnectedBefore = false

    enum AcquireAction {
        case use(RedisConnection)
        case startConnectingAndWait
        case wait
        case fail(RedisError)
    }

    /// A caller wants a connection. `waiter` is registered when the action says to wait.
    mutating func acquire(now: NIODeadline, id: UInt64, waiter: Waiter) -> AcquireAction {
        switch state {
        case .connected(let connection) where connection.isActive:
            return .use(connection)
        case .connected, .idle:
            state = .connecting(waiters: [id: waiter])
            return .startConnectingAndWait
        case .connecting(var waiters):
            waiters[id] = waiter
            state = .connecting(waiters: waiters)
            return .wait
        case .backingOff(let until, let lastError):
            if now < until {
                return .fail(RedisError(code: lastError.code, message: "\(lastError.message) (reconnecting with backoff; next attempt in \((until - now).nanoseconds / 1_000_000) ms)"))
            }
            state = .connecting(waiters: [id: waiter])
            return .startConnectingAndWait
        case .shutdown:
            return .fail(RedisError(code: .shutdown, message: "the client was closed"))
        }
    }

    /// A waiting caller was cancelled: it stops waiting (the connection attempt goes on for the others).
    mutating func cancelWaiter(id: UInt64) -> Waiter? {
        guard case .connecting(var waiters) = state, let waiter = waiters.removeValue(forKey: id) else { return nil }
        state = .connecting(waiters: waiters)
        return waiter
    }

    /// The fast path: a live connection, if there is one.
    var liveConnection: RedisConnection? {
        if case .connected(let connection) = state, connection.isActive { return connection }
        return nil
    }

    enum ConnectedAction {
        case resume([Waiter], isReconnect: Bool)
        case closeNewConnection
    }

    mutating func connectSucceeded(_ connection: RedisConnection) -> ConnectedAction {
        guard case .connecting(let waiters) = state else { return .closeNewConnection }
        state = .connected(connection)
        consecutiveFailures = 0
        defer { hasConnectedBefore = true }
        return .resume(Array(waiters.values), isReconnect: hasConnectedBefore)
    }

    mutating func connectFailed(_ error: RedisError, now: NIODeadline, backoff: RedisConfiguration.Backoff, random: Double) -> [Waiter] {
        guard case .connecting(let waiters) = state else { return [] }
        consecutiveFailures += 1
        let delay = backoff.delay(afterFailures: consecutiveFailures, random: random)
        state = .backingOff(until: now + TimeAmount(delay), lastError: error)
        return Array(waiters.values)
    }

    /// The live connection closed: the next caller reconnects.
    mutating func connectionClosed(_ connection: RedisConnection) {
        if case .connected(let current) = state, current === connection { state = .idle }
    }

    enum ShutdownAction {
        case close(RedisConnection?, [Waiter])
    }

    mutating func shutdown() -> ShutdownAction {
        defer { state = .shutdown }
        switch state {
        case .connected(let connection): return .close(connection, [])
        case .connecting(let waiters): return .close(nil, Array(waiters.values))
        default: return .close(nil, [])
        }
    }
}

/// One pool slot: lazily connects, reconnects with backoff after failures, shares one connection.
final class ConnectionSlot: Sendable {
    private let state = Mutex(SlotStateMachine())
    private let configuration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let metrics: ClientMetrics
    private let nextWaiterID = Atomic<UInt64>(0)
    /// Through Sentinel: where the primary is now (each connection asks it).
    private let resolver: SentinelResolver?

    init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, metrics: ClientMetrics, resolver: SentinelResolver? = nil) {
        self.resolver = resolver
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
    }

    /// The current connection if it is live (no waiting, no connecting).
    var liveConnection: RedisConnection? {
        state.withLock { $0.liveConnection }
    }

    /// A live connection: the current one, or a new one (waiting for it), or a fast failure while backing off.
    func connection() async throws(RedisError) -> RedisConnection {
        if let live = state.withLock({ $0.liveConnection }) { return live }
        let id = nextWaiterID.add(1, ordering: .relaxed).newValue
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (waiter: SlotStateMachine.Waiter) in
                    if Task.isCancelled {
                        waiter.resume(throwing: RedisError(code: .cancelled, message: "the task was cancelled while waiting for a connection"))
                        return
                    }
                    let action = state.withLock { $0.acquire(now: .now(), id: id, waiter: waiter) }
                    switch action {
                    case .use(let connection): waiter.resume(returning: connection)
                    case .wait: break
                    case .fail(let error): waiter.resume(throwing: error)
                    case .startConnectingAndWait:
                        Task { await self.connect() }
                    }
                }
            } onCancel: {
                state.withLock { $0.cancelWaiter(id: id) }?.resume(throwing: RedisError(code: .cancelled, message: "the task was cancelled while waiting for a connection"))
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "\(error)")
        }
    }

    private func connect() async {
        do throws(RedisError) {
            var configuration = self.configuration
            if let resolver { configuration.endpoint = try await resolver.primary() }
            let connection: RedisConnection
            do throws(RedisError) {
                connection = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger)
            } catch {
                resolver?.invalidate()  // the primary moved, or this node is no longer it
                throw error
            }
            switch state.withLock({ $0.connectSucceeded(connection) }) {
            case .closeNewConnection:
                await connection.close()
            case .resume(let waiters, let isReconnect):
                if isReconnect {
                    metrics.reconnects.increment()
                    logger.info("reconnected to Redis", metadata: ["endpoint": "\(configuration.endpoint)"])
                }
                await connection.setHandlers(onPush: nil) { [weak self] _ in
                    self?.state.withLock { $0.connectionClosed(connection) }
                }
                for waiter in waiters { waiter.resume(returning: connection) }
            }
        } catch {
            metrics.connectFailures.increment()
            logger.warning("cannot connect to Redis", metadata: ["endpoint": "\(configuration.endpoint)", "error": "\(error.message)"])
            let waiters = state.withLock {
                $0.connectFailed(error, now: .now(), backoff: configuration.reconnectBackoff, random: Double.random(in: 0..<1))
            }
            for waiter in waiters { waiter.resume(throwing: error) }
        }
    }

    /// Drops `connection` if it is this slot's current one (it answered READONLY, or Sentinel
    /// switched the primary); the next caller connects afresh. Commands in flight on it fail with
    /// ``RedisError/Code/connection``.
    func reset(_ connection: RedisConnection? = nil) async {
        let current = state.withLock { state -> RedisConnection? in
            guard let live = state.liveConnection, connection == nil || live === connection else { return nil }
            state.connectionClosed(live)
            return live
        }
        await current?.close()
    }

    /// Closes the slot: `graceful` lets the commands in flight finish first.
    func shutdown(graceful: Bool = false) async {
        let action = state.withLock { $0.shutdown() }
        switch action {
        case .close(let connection, let waiters):
            for waiter in waiters { waiter.resume(throwing: RedisError(code: .shutdown, message: "the client was closed")) }
            if graceful { await connection?.closeGracefully() } else { await connection?.close() }
        }
    }
}
