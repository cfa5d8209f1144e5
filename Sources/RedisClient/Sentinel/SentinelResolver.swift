import Logging
import NIOCore
import Synchronization

/// Finds the primary that Redis Sentinel names, and follows failovers.
///
/// ``primary()`` asks the sentinels in turn (`SENTINEL GET-MASTER-ADDR-BY-NAME`) and caches the
/// answer; every connection the client opens goes there, and its handshake checks `ROLE` is
/// `master` (a sentinel that has not yet noticed a failover can name a demoted node). The cache is
/// dropped when a connection attempt fails, when a node answers `READONLY`, and when a sentinel
/// publishes `+switch-master` for this name; the last also closes the client's connections to the
/// old primary (``switchObservers``), so they reconnect to the new one at once.
final class SentinelResolver: Sendable {
    private struct State {
        var primary: RedisConfiguration.Endpoint?
        var watcher: RedisSubscriber?
        var closed = false
    }

    private let state = Mutex(State())
    private let sentinels: [RedisConfiguration.Endpoint]
    let masterName: String
    private let sentinelConfiguration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let metrics: ClientMetrics
    /// Told (on any thread) when a sentinel announces that the primary switched.
    let switchObservers = TopologyObservers()

    init(configuration: RedisConfiguration, sentinels: [RedisConfiguration.Endpoint], masterName: String, password: String?,
         eventLoop: any EventLoop, logger: Logger, metrics: ClientMetrics) {
        self.sentinels = sentinels
        self.masterName = masterName
        // Sentinels speak RESP like Redis but have no databases and their own password.
        var sentinel = RedisConfiguration(endpoint: sentinels[0], password: password, connectTimeout: configuration.connectTimeout,
                                          commandTimeout: configuration.commandTimeout, poolSize: 1, reconnectBackoff: configuration.reconnectBackoff,
                                          tls: configuration.tls)
        sentinel.clientName = configuration.clientName.map { $0 + "-sentinel" }
        self.sentinelConfiguration = sentinel
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
    }

    /// The current primary: cached, or asked of the sentinels now.
    func primary() async throws(RedisError) -> RedisConfiguration.Endpoint {
        if let known = state.withLock({ $0.primary }) { return known }
        var failures: [String] = []
        for sentinel in sentinels {
            var configuration = sentinelConfiguration
            configuration.endpoint = sentinel
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger)
                defer { Task { await connection.close() } }
                let reply = try await connection.send(RedisCommand("SENTINEL", "GET-MASTER-ADDR-BY-NAME", RedisArgument(masterName)))
                guard let pair = reply.array, pair.count == 2, let host = pair[0].string, let portText = pair[1].string,
                      let port = Int(portText), (1...65535).contains(port) else {
                    failures.append("\(sentinel): does not know a master named '\(masterName)' (\(reply))")
                    continue
                }
                let endpoint = RedisConfiguration.Endpoint.tcp(host: host, port: port)
                state.withLock { $0.primary = endpoint }
                startWatching()
                return endpoint
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError(code: .connection, message: "no sentinel named the primary '\(masterName)': \(failures.joined(separator: "; ")). Check the sentinel addresses and the master name in the redis+sentinel:// URL")
    }

    /// Forgets the cached primary (a connection to it failed, or it answered READONLY).
    func invalidate() {
        state.withLock { $0.primary = nil }
    }

    /// Subscribes to `+switch-master` on a sentinel (rotating through them on reconnects).
    private func startWatching() {
        let watcher: RedisSubscriber? = state.withLock { state in
            guard state.watcher == nil, !state.closed else { return nil }
            let sentinels = self.sentinels
            let created = RedisSubscriber(configuration: sentinelConfiguration, eventLoop: eventLoop, logger: logger, metrics: metrics) { attempt in
                sentinels[abs(attempt) % sentinels.count]
            }
            state.watcher = created
            return created
        }
        guard let watcher else { return }
        Task {
            do {
                _ = try await watcher.subscribe(to: ["+switch-master"], handler: { [weak self] event in
                    guard let self else { return }
                    switch event {
                    case .message(let message):
                        self.switched(String(buffer: message.payload))
                    case .reconnected, .overflow:
                        // A switch may have been missed: ask again on the next connection.
                        self.invalidate()
                    }
                }, onEnd: {})
            } catch {
                self.logger.warning("cannot watch the sentinels for +switch-master; failovers are noticed on errors only", metadata: ["error": "\(error)"])
            }
        }
    }

    /// `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`.
    private func switched(_ payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 5, parts[0] == masterName, let port = Int(parts[4]), (1...65535).contains(port) else { return }
        let endpoint = RedisConfiguration.Endpoint.tcp(host: String(parts[3]), port: port)
        state.withLock { $0.primary = endpoint }
        logger.info("Sentinel switched the primary", metadata: ["master": "\(masterName)", "primary": "\(endpoint)"])
        switchObservers.notify()
    }

    func close() async {
        let watcher = state.withLock { state -> RedisSubscriber? in
            state.closed = true
            defer { state.watcher = nil }
            return state.watcher
        }
        await watcher?.close()
    }
}
