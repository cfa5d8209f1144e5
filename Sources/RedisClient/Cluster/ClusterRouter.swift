import Logging
import NIOCore
import Synchronization

/// The cluster side of ``RedisClient``: the slot map, a small pool of pipelined connections per
/// primary, and the redirect loop (`MOVED`: update the map and retry; `ASK`: `ASKING` and retry once
/// there).
///
/// The slot map is loaded with `CLUSTER SHARDS` (falling back to `CLUSTER SLOTS` on servers
/// without it) from any known node, and reloaded after a redirect, after a connection to a node
/// fails (a failover may be under way), and when it is older than ``refreshInterval``. Reloads are
/// coalesced: at most one is in flight, and background ones start at most every 100 ms.
final class ClusterRouter: Sendable {
    /// How old the map may get before a command triggers a background reload.
    static let refreshInterval: Duration = .seconds(15)
    /// The most redirects one command follows before failing.
    static let maxRedirects = 5
    /// The most `TRYAGAIN` answers (slot migration under way) one command waits out, 10 ms apart.
    static let maxTryAgain = 50

    private struct State {
        var topology = ClusterTopology()
        var seeds: [RedisConfiguration.Endpoint]
        var pools: [RedisConfiguration.Endpoint: NodePool] = [:]
        var loaded: ContinuousClock.Instant?
        var lastRefreshStart: ContinuousClock.Instant?
        var refreshing: Task<Void, Never>?
        var lastRefreshError: RedisError?
        var closed = false
        /// Slots a `MOVED` reassigned recently, and when: a map fetched from a node whose view lags
        /// (gossip takes a moment after a failover or a migration) must not undo them.
        var recentMoves: [Int: (endpoint: RedisConfiguration.Endpoint, at: ContinuousClock.Instant)] = [:]
    }

    /// How long a `MOVED` overrides the loaded map (a later `MOVED` corrects it if it is wrong).
    static let moveMemory: Duration = .seconds(10)

    private let state: Mutex<State>
    private let configuration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let metrics: ClientMetrics

    init(configuration: RedisConfiguration, seeds: [RedisConfiguration.Endpoint], eventLoop: any EventLoop, logger: Logger, metrics: ClientMetrics) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
        self.state = Mutex(State(seeds: seeds))
    }

    /// The primaries of the current map (loading it first if there is none).
    func primaries() async throws(RedisError) -> [RedisConfiguration.Endpoint] {
        let known = state.withLock { $0.topology.primaries }
        if !known.isEmpty { return knownServingPrimaries() }
        try await refresh()
        return knownServingPrimaries()
    }

    /// The primaries that serve at least one slot.
    private func knownServingPrimaries() -> [RedisConfiguration.Endpoint] {
        state.withLock { state in
            var serving = Set<Int>()
            for slot in stride(from: 0, to: HashSlot.count, by: 1) {
                if let primary = state.topology.primary(forSlot: slot), let index = state.topology.primaries.firstIndex(of: primary) {
                    serving.insert(index)
                }
                if serving.count == state.topology.primaries.count { break }
            }
            return serving.sorted().map { state.topology.primaries[$0] }
        }
    }

    /// The current map (for `config check`, tests and benchmarks).
    var topology: ClusterTopology { state.withLock { $0.topology } }

    /// A node to subscribe on (classic pub/sub reaches every node of a cluster): the `attempt`-th
    /// known primary, or a seed before the map is loaded.
    func subscriberEndpoint(attempt: Int) -> RedisConfiguration.Endpoint? {
        state.withLock { state in
            let candidates = state.topology.primaries.isEmpty ? state.seeds : state.topology.primaries
            guard !candidates.isEmpty else { return nil }
            return candidates[abs(attempt) % candidates.count]
        }
    }

    /// The primary serving `slot` (loading the map if needed), or any primary for `nil`.
    func endpoint(forSlot slot: Int?) async throws(RedisError) -> RedisConfiguration.Endpoint {
        let (found, stale) = state.withLock { state -> (RedisConfiguration.Endpoint?, Bool) in
            let stale = state.loaded.map { ContinuousClock.now - $0 > Self.refreshInterval } ?? true
            if let slot { return (state.topology.primary(forSlot: slot), stale) }
            return (state.topology.primaries.first, stale)
        }
        if let found {
            if stale { requestRefresh() }
            return found
        }
        try await refresh()
        let again = state.withLock { state in slot.map { state.topology.primary(forSlot: $0) } ?? state.topology.primaries.first }
        guard let again else {
            throw RedisError(code: .connection, message: "no primary serves hash slot \(slot.map(String.init) ?? "any") in the cluster map (a failover may be under way; retry, or check CLUSTER SHARDS)")
        }
        return again
    }

    /// A live connection to `endpoint` from its pool. A failure starts a map reload (the node may
    /// have failed over) and is rethrown: the caller's command was not sent.
    func connection(to endpoint: RedisConfiguration.Endpoint) async throws(RedisError) -> RedisConnection {
        let pool = try state.withLock { (state) throws(RedisError) -> NodePool in
            if state.closed { throw RedisError(code: .shutdown, message: "the client was closed") }
            if let pool = state.pools[endpoint] { return pool }
            var node = configuration
            node.endpoint = endpoint
            let pool = NodePool(configuration: node, eventLoop: eventLoop, logger: logger, metrics: metrics)
            state.pools[endpoint] = pool
            return pool
        }
        do {
            return try await pool.connection()
        } catch {
            if error.code == .connection || error.code == .timeout { requestRefresh() }
            throw error
        }
    }

    /// Records a `MOVED`: the slot's new primary, used at once; a full reload follows in the background.
    func moved(slot: Int, to endpoint: RedisConfiguration.Endpoint) {
        let changed = state.withLock { state -> Bool in
            let before = state.topology.primary(forSlot: slot)
            state.topology.assign(slot: slot, to: endpoint)
            state.recentMoves[slot] = (endpoint, .now)
            return before != endpoint
        }
        metrics.clusterRedirects.increment()
        if changed { mapObservers.notify() }
        requestRefresh()
    }

    /// Starts a background reload unless one is running or one started in the last 100 ms.
    func requestRefresh() {
        let start = state.withLock { state -> Bool in
            if state.closed || state.refreshing != nil { return false }
            if let last = state.lastRefreshStart, ContinuousClock.now - last < .milliseconds(100) { return false }
            return true
        }
        guard start else { return }
        Task { try? await self.refresh() }
    }

    /// Reloads the map now (joining a reload in flight).
    func refresh() async throws(RedisError) {
        let task = state.withLock { state -> Task<Void, Never>? in
            if state.closed { return nil }
            if let running = state.refreshing { return running }
            state.lastRefreshStart = .now
            let task = Task { await self.load() }
            state.refreshing = task
            return task
        }
        guard let task else { throw RedisError(code: .shutdown, message: "the client was closed") }
        await task.value
        if let error = state.withLock({ $0.topology.primaries.isEmpty ? $0.lastRefreshError : nil }) { throw error }
    }

    /// Asks the known primaries, then the seeds, for the map; installs the first complete answer.
    private func load() async {
        let candidates = state.withLock { state in
            var seen = Set<RedisConfiguration.Endpoint>()
            return (state.topology.primaries + state.seeds).filter { seen.insert($0).inserted }
        }
        var lastError = RedisError(code: .connection, message: "no cluster node is known")
        var best: ClusterTopology?
        for endpoint in candidates {
            do throws(RedisError) {
                let topology = try await fetch(from: endpoint)
                if topology.coveredSlots == HashSlot.count { best = topology; break }
                if best.map({ topology.coveredSlots > $0.coveredSlots }) ?? true { best = topology }
            } catch {
                lastError = RedisError(code: error.code, message: "loading the cluster map from \(endpoint): \(error.message)")
            }
        }
        let fetched = best
        let changed = state.withLock { state -> Bool in
            var changed = false
            var installed = fetched
            // A MOVED is the owning node's own word, newer than a lagging node's map: keep it.
            let now = ContinuousClock.now
            state.recentMoves = state.recentMoves.filter { now - $0.value.at < Self.moveMemory }
            if installed != nil {
                for (slot, move) in state.recentMoves { installed?.assign(slot: slot, to: move.endpoint) }
            }
            if let installed, installed.coveredSlots > 0 {
                changed = state.topology != installed
                if state.topology != installed {
                    logger.info("cluster map loaded", metadata: ["primaries": "\(installed.primaries.count)", "slots": "\(installed.coveredSlots)"])
                }
                state.topology = installed
                state.loaded = .now
                state.lastRefreshError = nil
            } else {
                state.lastRefreshError = lastError
            }
            state.refreshing = nil
            return changed
        }
        metrics.clusterRefreshes.increment()
        if changed { mapObservers.notify() }
    }

    /// Told after a reload installs a map that differs from the one before, and after a `MOVED`
    /// reassigns a slot (the sharded subscriber checks that each channel is still on its slot's
    /// primary; a near-cache drops what it read from the old owner).
    let mapObservers = TopologyObservers()

    /// The primary serving `slot` in the current map, without loading anything.
    func knownPrimary(forSlot slot: Int) -> RedisConfiguration.Endpoint? {
        state.withLock { $0.topology.primary(forSlot: slot) }
    }

    /// Whether the node at `endpoint` says it is a primary (`ROLE`): a map loaded from a node that
    /// has not yet heard of a failover may still name a demoted primary.
    func isPrimary(_ endpoint: RedisConfiguration.Endpoint) async throws(RedisError) -> Bool {
        let reply = try await connection(to: endpoint).send(RedisCommand("ROLE"))
        return reply.array?.first?.string == "master"
    }

    private func fetch(from endpoint: RedisConfiguration.Endpoint) async throws(RedisError) -> ClusterTopology {
        let connection = try await connection(to: endpoint)
        do {
            let reply = try await connection.send(RedisCommand("CLUSTER", "SHARDS"))
            return try ClusterTopology.parse(shards: reply, queried: endpoint, tls: configuration.tls != nil)
        } catch where error.code == .server {
            // Redis 6 and older: no CLUSTER SHARDS.
            let reply = try await connection.send(RedisCommand("CLUSTER", "SLOTS"))
            return try ClusterTopology.parse(slots: reply, queried: endpoint)
        }
    }

    /// Sends `prefix` (already encoded, answered by `prefixReplies` replies, e.g. a `TIME`) and
    /// `command` in one write to the primary of `slot`, following redirects of `command`; returns
    /// the prefix's replies and the command's reply (an error reply as `.error`, not thrown).
    ///
    /// Only `command`'s reply is checked for `MOVED`/`ASK`; the prefix is resent with it, so it must
    /// be safe to repeat (a read).
    func send(prefix: ByteBuffer?, prefixReplies: Int, command: ByteBuffer, slot: Int?, timeout: TimeAmount) async throws(RedisError) -> (prefix: [RESPValue], reply: RESPValue) {
        var target = try await endpoint(forSlot: slot)
        var asking = false
        var redirects = 0
        var retries = 0
        while redirects <= Self.maxRedirects {
            let connection = try await connection(to: target)
            var buffer = prefix ?? connection.channel.allocator.buffer(capacity: command.readableBytes + 16)
            if asking { buffer.writeStaticString("*1\r\n$6\r\nASKING\r\n") }
            var body = command
            buffer.writeBuffer(&body)
            let total = prefixReplies + (asking ? 1 : 0) + 1
            let replies: [RESPValue]
            do {
                let reply = try await connection.send(encoded: buffer, timeout: timeout, replies: total)
                replies = total == 1 ? [reply] : (reply.array ?? [reply])
            } catch where error.code == .server && total == 1 {
                replies = [.error(error.message)]
            } catch {
                if error.code == .connection || error.code == .timeout { requestRefresh() }
                throw error
            }
            guard let last = replies.last, replies.count == total else {
                throw RedisError(code: .protocolError, message: "expected \(total) replies from \(target)")
            }
            if case .error(let message) = last, message.hasPrefix("TRYAGAIN"), retries < Self.maxTryAgain {
                // A multi-key command while its slot migrates, with some keys already moved: the
                // migration finishes in milliseconds; wait and resend (nothing ran).
                retries += 1
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            if case .error(let message) = last, let redirect = ClusterRedirect(errorMessage: message) {
                redirects += 1
                switch redirect {
                case .moved(let movedSlot, let to):
                    moved(slot: movedSlot, to: to)
                    target = to
                    asking = false
                case .ask(_, let to):
                    metrics.clusterRedirects.increment()
                    target = to
                    asking = true
                }
                continue
            }
            return (Array(replies.prefix(prefixReplies)), last)
        }
        throw RedisError(code: .server, message: "the command was redirected more than \(Self.maxRedirects) times (slot \(slot.map(String.init) ?? "?")): the cluster is resharding or its map is inconsistent; retry")
    }

    /// Closes every pool.
    func close(graceful: Bool) async {
        let (pools, task) = state.withLock { state -> ([NodePool], Task<Void, Never>?) in
            state.closed = true
            defer { state.pools = [:] }
            return (Array(state.pools.values), state.refreshing)
        }
        task?.cancel()
        for pool in pools { await pool.shutdown(graceful: graceful) }
    }
}

/// The pooled, pipelined connections to one cluster node (``RedisConfiguration/poolSize`` of them).
final class NodePool: Sendable {
    private let slots: [ConnectionSlot]
    private let next = Atomic<Int>(0)

    init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, metrics: ClientMetrics) {
        slots = (0..<configuration.poolSize).map { _ in
            ConnectionSlot(configuration: configuration, eventLoop: eventLoop, logger: logger, metrics: metrics)
        }
    }

    func connection() async throws(RedisError) -> RedisConnection {
        let index = slots.count == 1 ? 0 : next.add(1, ordering: .relaxed).newValue % slots.count
        return try await slots[index].connection()
    }

    func shutdown(graceful: Bool) async {
        for slot in slots { await slot.shutdown(graceful: graceful) }
    }
}
