import Logging
import NIOCore
import Synchronization

/// Connections leased to one task at a time (``RedisClient/withConnection(_:)``), apart from the
/// shared, multiplexed pool: a transaction or a blocking command never shares its socket.
///
/// A lease that ends normally on a live connection returns it for reuse (up to `idleLimit` are
/// kept); a lease that ends by throwing, or whose connection closed, closes it, because the
/// connection's state (an open `MULTI`, a `WATCH`, a blocked command) is then unknown.
final class ExclusiveConnections: Sendable {
    private struct State {
        var idle: [RedisConnection] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let configuration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let idleLimit: Int
    private let resolver: SentinelResolver?

    init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, resolver: SentinelResolver? = nil) {
        self.resolver = resolver
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.idleLimit = configuration.poolSize
    }

    func lease() async throws(RedisError) -> RedisConnection {
        let reused = try state.withLock { (state) throws(RedisError) -> RedisConnection? in
            if state.closed { throw RedisError(code: .shutdown, message: "the client was closed") }
            while let connection = state.idle.popLast() {
                if connection.isActive { return connection }
            }
            return nil
        }
        if let reused { return reused }
        var configuration = self.configuration
        if let resolver { configuration.endpoint = try await resolver.primary() }
        return try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger, exclusive: true)
    }

    /// Ends a lease: `reusable` when the body returned normally.
    func giveBack(_ connection: RedisConnection, reusable: Bool) async {
        let keep = state.withLock { state -> Bool in
            guard reusable, connection.isActive, !state.closed, state.idle.count < idleLimit else { return false }
            state.idle.append(connection)
            return true
        }
        if !keep { await connection.close() }
    }

    func close() async {
        let idle = state.withLock { state -> [RedisConnection] in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for connection in idle { await connection.close() }
    }
}
