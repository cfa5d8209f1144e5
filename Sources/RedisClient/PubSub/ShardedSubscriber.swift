import Logging
import NIOCore
import Synchronization

/// Sharded pub/sub (`SSUBSCRIBE`, Redis 7+ and Valkey): a shard channel lives in the hash slot of
/// its name, and its messages (`SPUBLISH`) reach only the subscribers on the node serving that slot.
///
/// On a cluster each channel is subscribed on the primary that serves its slot, over one subscriber
/// connection per primary. The channel follows its slot:
/// - an `SSUBSCRIBE` answered with `MOVED` is sent again to the node named;
/// - when the slot leaves the node (a reshard, or a failover that made the node a replica), Redis
///   drops the subscription with a `sunsubscribe` message; when the node's connection is lost, all
///   its channels are dropped. Either way the channel's listeners get
///   ``RedisPubSubEvent/reconnected`` at once (messages may have been missed), the slot map is
///   reloaded, the channel is subscribed where the slot is now (retrying with the client's reconnect
///   backoff while no node serves it), and the listeners get ``RedisPubSubEvent/reconnected`` again.
///
/// On one server (standalone or through Sentinel) shard channels ride the client's
/// ``RedisClient/subscriber`` connection, which reconnects and resubscribes by itself.
public final class ShardedSubscriber: Sendable {
    private struct Listener: Sendable {
        var deliver: @Sendable (RedisPubSubEvent) -> Void
        var finish: @Sendable () -> Void
    }

    /// Where a channel is subscribed: `node` is `nil` for the one-server subscriber.
    private struct Placement {
        var node: RedisConfiguration.Endpoint?
        var innerID: UInt64
    }

    private struct Channel {
        var listeners: [UInt64: Listener] = [:]
        var placement: Placement?
        /// A placement attempt is under way (at most one per channel).
        var placing = false
        /// The channel lost its node; its listeners get `.reconnected` once it is placed again.
        var displaced = false
        /// Callers waiting for the placement under way.
        var waiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
    }

    private struct State {
        var channels: [String: Channel] = [:]
        var nodes: [RedisConfiguration.Endpoint: RedisSubscriber] = [:]
        var relocating: Task<Void, Never>?
        var nextID: UInt64 = 0
        var closed = false

        mutating func makeID() -> UInt64 {
            nextID += 1
            return nextID
        }
    }

    private let state = Mutex(State())
    private let configuration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let metrics: ClientMetrics
    private let router: ClusterRouter
    private let isCluster: @Sendable () async throws(RedisError) -> Bool
    private let standalone: @Sendable () -> RedisSubscriber?
    /// The most `SSUBSCRIBE` attempts (redirects, unreachable nodes) one placement makes.
    private static let maxPlacementAttempts = 6

    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, metrics: ClientMetrics, router: ClusterRouter,
        isCluster: @escaping @Sendable () async throws(RedisError) -> Bool, standalone: @escaping @Sendable () -> RedisSubscriber?
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
        self.router = router
        self.isCluster = isCluster
        self.standalone = standalone
    }

    // MARK: Public API

    /// Subscribes to shard channels (`SSUBSCRIBE`; on a cluster each on the node serving its slot);
    /// returns once every one is confirmed. Iterate the result; stop iterating (or drop it) to
    /// unsubscribe. Publish with ``RedisClient/spublish(_:to:)``.
    /// - Throws: ``RedisError``: `.connection` when no node could take a channel, `.server` when
    ///   Redis refused it (an ACL without the channel, a server older than 7.0), `.shutdown`.
    public func subscribe(to channels: [String]) async throws(RedisError) -> RedisSubscription {
        guard !channels.isEmpty else { throw RedisError(code: .configuration, message: "subscribe needs at least one shard channel") }
        let (stream, continuation) = AsyncStream<RedisPubSubEvent>.makeStream(bufferingPolicy: .bufferingNewest(RedisSubscriber.bufferLimit))
        let deliver = RedisSubscriber.boundedDelivery(into: continuation)
        let id = state.withLock { $0.makeID() }
        var added: [String] = []
        do {
            for channel in Set(channels) {
                try await add(id: id, channel: channel, listener: Listener(deliver: deliver, finish: { continuation.finish() }))
                added.append(channel)
            }
        } catch {
            for channel in added { remove(id: id, channel: channel) }
            continuation.finish()
            throw error
        }
        let subscribed = added
        continuation.onTermination = { [weak self] _ in
            for channel in subscribed { self?.remove(id: id, channel: channel) }
        }
        return RedisSubscription(stream: stream)
    }

    // MARK: Package API (callback listeners)

    /// Subscribes `handler` to one shard channel and returns the listener's id once Redis confirmed
    /// it. The handler runs on an event loop for every message and for
    /// ``RedisPubSubEvent/reconnected``; it must not block. `onEnd` runs once when the client closes.
    package func subscribe(
        to channel: String, handler: @escaping @Sendable (RedisPubSubEvent) -> Void, onEnd: @escaping @Sendable () -> Void
    ) async throws(RedisError) -> UInt64 {
        let id = state.withLock { $0.makeID() }
        try await add(id: id, channel: channel, listener: Listener(deliver: handler, finish: onEnd))
        return id
    }

    /// Removes a listener; the channel's last listener to go unsubscribes it.
    package func unsubscribe(listener id: UInt64, from channel: String) {
        remove(id: id, channel: channel)
    }

    /// How many listeners `channel` has in this process (tests).
    package func listenerCount(channel: String) -> Int { state.withLock { $0.channels[channel]?.listeners.count ?? 0 } }

    /// The node `channel` is subscribed on now (`nil` when it is not placed, or on one server) (tests).
    package func node(of channel: String) -> RedisConfiguration.Endpoint? { state.withLock { $0.channels[channel]?.placement?.node } }

    /// How many per-node subscriber connections are open or wanted (tests).
    package var nodeSubscriberCount: Int { state.withLock { $0.nodes.count } }

    // MARK: Adding and removing

    private func add(id: UInt64, channel: String, listener: Listener) async throws(RedisError) {
        enum Step { case ready, place, wait }
        let step = try state.withLock { (state) throws(RedisError) -> Step in
            if state.closed { throw RedisError(code: .shutdown, message: "the client was closed") }
            var entry = state.channels[channel] ?? Channel()
            entry.listeners[id] = listener
            defer { state.channels[channel] = entry }
            if entry.placement != nil { return .ready }
            if entry.placing { return .wait }
            entry.placing = true
            return .place
        }
        switch step {
        case .ready:
            return
        case .place:
            do {
                try await place(channel)
            } catch {
                drop(id: id, channel: channel)
                throw error
            }
        case .wait:
            do {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let resumeNow = state.withLock { state -> Bool in
                        guard state.channels[channel]?.placing == true else { return true }
                        state.channels[channel]!.waiters[id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } catch {
                drop(id: id, channel: channel)
                throw (error as? RedisError) ?? RedisError(code: .connection, message: "\(error)")
            }
            // The placement this caller waited for may have failed for its own caller only after
            // this one registered; it is placed, or placing again, or failed for everyone.
            if state.withLock({ $0.channels[channel]?.placement == nil && $0.channels[channel]?.listeners[id] != nil && $0.channels[channel]?.placing == false }) {
                drop(id: id, channel: channel)
                throw RedisError(code: .connection, message: "the shard channel \(channel) could not be subscribed")
            }
        }
    }

    /// Takes a listener off a channel whose subscription failed for it.
    private func drop(id: UInt64, channel: String) {
        state.withLock { state in
            state.channels[channel]?.listeners[id] = nil
            if let entry = state.channels[channel], entry.listeners.isEmpty, entry.placement == nil, !entry.placing {
                state.channels[channel] = nil
            }
        }
    }

    private func remove(id: UInt64, channel: String) {
        let release = state.withLock { state -> Placement? in
            guard var entry = state.channels[channel], entry.listeners.removeValue(forKey: id) != nil else { return nil }
            guard entry.listeners.isEmpty else {
                state.channels[channel] = entry
                return nil
            }
            if entry.placing {
                state.channels[channel] = entry  // the placement under way sees nobody left and undoes itself
                return nil
            }
            state.channels[channel] = nil
            return entry.placement
        }
        if let release { unsubscribe(channel, at: release) }
    }

    private func unsubscribe(_ channel: String, at placement: Placement) {
        guard let node = placement.node else {
            standalone()?.unsubscribe(listener: placement.innerID, from: [channel], shard: true)
            return
        }
        let subscriber = state.withLock { $0.nodes[node] }
        subscriber?.unsubscribe(listener: placement.innerID, from: [channel], shard: true)
        retireIfIdle(node)
    }

    /// Closes a node's subscriber connection once no channel uses it.
    private func retireIfIdle(_ node: RedisConfiguration.Endpoint) {
        let idle = state.withLock { state -> RedisSubscriber? in
            guard let subscriber = state.nodes[node], subscriber.isIdle,
                  !state.channels.values.contains(where: { $0.placement?.node == node }) else { return nil }
            state.nodes[node] = nil
            return subscriber
        }
        if let idle { Task { await idle.close() } }
    }

    // MARK: Placing a channel

    /// Subscribes `channel` where its slot is served, following `MOVED` and reloading the slot map
    /// when a node cannot be reached. The caller set `placing`; this clears it and resumes the
    /// channel's waiters.
    private func place(_ channel: String) async throws(RedisError) {
        var lastError = RedisError(code: .connection, message: "the shard channel \(channel) could not be subscribed")
        let slot = HashSlot.of(channel)
        for attempt in 0..<Self.maxPlacementAttempts {
            if attempt > 0 {
                try? await Task.sleep(for: configuration.reconnectBackoff.delay(afterFailures: attempt, random: Double.random(in: 0..<1)))
            }
            let node: RedisConfiguration.Endpoint?
            let subscriber: RedisSubscriber
            do throws(RedisError) {
                if try await isCluster() {
                    let endpoint = try await router.endpoint(forSlot: slot)
                    // A replica takes SSUBSCRIBE too (its shard's messages reach it), so a map that
                    // still names a demoted primary would leave the channel there, unnoticed.
                    guard try await router.isPrimary(endpoint) else {
                        lastError = RedisError(code: .connection, message: "\(endpoint) is no longer a primary (a failover is under way)")
                        try? await router.refresh()
                        continue
                    }
                    node = endpoint
                    subscriber = try nodeSubscriber(endpoint)
                } else {
                    guard let shared = standalone() else { throw RedisError(code: .shutdown, message: "the client was closed") }
                    node = nil
                    subscriber = shared
                }
                let innerID = try await subscriber.subscribe(
                    to: [channel], shard: true,
                    handler: { [weak self] event in self?.forward(event, channel: channel) },
                    onEnd: { [weak self] in if node == nil { self?.finishAll(channel) } }
                )
                settle(channel, placement: Placement(node: node, innerID: innerID), error: nil)
                return
            } catch {
                lastError = error
                if state.withLock({ $0.closed }) { break }
                // A node subscriber retired under this attempt (its last other channel left) fails
                // it with `.shutdown`: the next attempt makes a new one.
                if error.code == .shutdown { continue }
                if error.code == .server, let redirect = ClusterRedirect(errorMessage: error.message), case .moved(let movedSlot, let endpoint) = redirect {
                    router.moved(slot: movedSlot, to: endpoint)
                    continue
                }
                if error.code == .connection || error.code == .timeout {
                    try? await router.refresh()
                    continue
                }
                break  // refused (NOPERM, unknown command): retrying cannot help
            }
        }
        settle(channel, placement: nil, error: lastError)
        throw lastError
    }

    /// Records the outcome of a placement and resumes the callers waiting for it.
    private func settle(_ channel: String, placement: Placement?, error: RedisError?) {
        let (waiters, listeners, undo) = state.withLock { state -> ([CheckedContinuation<Void, any Error>], [Listener], Placement?) in
            guard var entry = state.channels[channel] else { return ([], [], placement) }
            entry.placing = false
            let waiters = Array(entry.waiters.values)
            entry.waiters = [:]
            if state.closed || entry.listeners.isEmpty {
                state.channels[channel] = nil
                return (waiters, [], placement)
            }
            entry.placement = placement
            var told: [Listener] = []
            if placement != nil, entry.displaced {
                entry.displaced = false
                told = Array(entry.listeners.values)
            }
            state.channels[channel] = entry
            return (waiters, told, nil)
        }
        if let undo { unsubscribe(channel, at: undo) }
        for waiter in waiters {
            if let error { waiter.resume(throwing: error) } else { waiter.resume() }
        }
        if !listeners.isEmpty {
            metrics.resubscribes.increment()
            for listener in listeners { listener.deliver(.reconnected) }
        }
    }

    private func nodeSubscriber(_ node: RedisConfiguration.Endpoint) throws(RedisError) -> RedisSubscriber {
        try state.withLock { (state) throws(RedisError) -> RedisSubscriber in
            if state.closed { throw RedisError(code: .shutdown, message: "the client was closed") }
            if let existing = state.nodes[node] { return existing }
            var nodeConfiguration = configuration
            nodeConfiguration.endpoint = node
            let subscriber = RedisSubscriber(
                configuration: nodeConfiguration, eventLoop: eventLoop, logger: logger, metrics: metrics,
                onDisplaced: { [weak self] channels in self?.displaced(channels, from: node) }
            )
            state.nodes[node] = subscriber
            return subscriber
        }
    }

    // MARK: Messages and displacement

    private func forward(_ event: RedisPubSubEvent, channel: String) {
        let listeners = state.withLock { Array(($0.channels[channel]?.listeners ?? [:]).values) }
        for listener in listeners { listener.deliver(event) }
    }

    /// The one-server subscriber was closed (the client is closing): the channel's listeners end.
    private func finishAll(_ channel: String) {
        let listeners = state.withLock { state -> [Listener] in
            defer { state.channels[channel] = nil }
            return Array((state.channels[channel]?.listeners ?? [:]).values)
        }
        for listener in listeners { listener.finish() }
    }

    /// `node` can no longer serve `channels` (the server dropped them, or the connection was lost):
    /// their listeners re-check now, and the channels are placed again where their slots are.
    private func displaced(_ channels: [String], from node: RedisConfiguration.Endpoint) {
        let (released, told, startLoop) = state.withLock { state -> ([(String, UInt64)], [Listener], Bool) in
            var released: [(String, UInt64)] = []
            var told: [Listener] = []
            for channel in channels {
                guard var entry = state.channels[channel], let placement = entry.placement, placement.node == node else { continue }
                entry.placement = nil
                entry.displaced = true
                state.channels[channel] = entry
                released.append((channel, placement.innerID))
                told += entry.listeners.values
            }
            guard !released.isEmpty, !state.closed, state.relocating == nil else { return (released, told, false) }
            return (released, told, true)
        }
        guard !released.isEmpty else { return }
        logger.info("shard channels left their node; moving them to where their slots are now", metadata: [
            "node": "\(node)", "channels": "\(released.count)",
        ])
        let subscriber = state.withLock { $0.nodes[node] }
        for (channel, innerID) in released { subscriber?.unsubscribe(listener: innerID, from: [channel], shard: true) }
        retireIfIdle(node)
        for listener in told { listener.deliver(.reconnected) }
        if startLoop { startRelocation() }
    }

    private func startRelocation() {
        state.withLock { state in
            guard state.relocating == nil, !state.closed else { return }
            state.relocating = Task { await self.relocate() }
        }
    }

    /// Places every displaced channel again, reloading the slot map first; retries with the client's
    /// reconnect backoff while some cannot be placed (no node serves the slot during a failover).
    private func relocate() async {
        var failures = 0
        while true {
            let waiting = state.withLock { state -> [String]? in
                let waiting = state.channels.filter { !$0.value.listeners.isEmpty && $0.value.placement == nil && !$0.value.placing && $0.value.displaced }.map(\.key)
                if waiting.isEmpty || state.closed {
                    state.relocating = nil
                    return nil
                }
                for channel in waiting { state.channels[channel]!.placing = true }
                return waiting
            }
            guard let waiting else { return }
            try? await router.refresh()
            var failed = false
            for channel in waiting {
                do {
                    try await place(channel)
                } catch {
                    failed = true
                    // `place` cleared `placing`; keep the channel displaced so the next round tries again.
                    state.withLock { state in
                        if state.channels[channel] != nil { state.channels[channel]!.displaced = true }
                    }
                }
            }
            if failed {
                failures += 1
                metrics.connectFailures.increment()
                try? await Task.sleep(for: configuration.reconnectBackoff.delay(afterFailures: failures, random: Double.random(in: 0..<1)))
            } else {
                failures = 0
            }
        }
    }

    /// Moves every channel whose node no longer serves its slot in the current map (called when the
    /// router installs a changed map; Redis tells subscribers of moved slots itself, this catches a
    /// placement made from a stale map).
    package func reconcile() {
        let misplaced = state.withLock { state -> [RedisConfiguration.Endpoint: [String]] in
            var misplaced: [RedisConfiguration.Endpoint: [String]] = [:]
            for (channel, entry) in state.channels {
                guard let node = entry.placement?.node, let owner = router.knownPrimary(forSlot: HashSlot.of(channel)), owner != node else { continue }
                misplaced[node, default: []].append(channel)
            }
            return misplaced
        }
        for (node, channels) in misplaced { displaced(channels, from: node) }
    }

    // MARK: Closing

    /// Ends every subscription and closes the per-node connections (the client calls this when it closes).
    func close() async {
        let (listeners, nodes, relocating) = state.withLock { state -> ([Listener], [RedisSubscriber], Task<Void, Never>?) in
            state.closed = true
            let listeners = state.channels.values.flatMap(\.listeners.values)
            let waiters = state.channels.values.flatMap(\.waiters.values)
            for waiter in waiters { waiter.resume(throwing: RedisError(code: .shutdown, message: "the client was closed")) }
            state.channels = [:]
            defer { state.nodes = [:] }
            return (listeners, Array(state.nodes.values), state.relocating)
        }
        relocating?.cancel()
        for listener in listeners { listener.finish() }
        for node in nodes { await node.close() }
    }
}
