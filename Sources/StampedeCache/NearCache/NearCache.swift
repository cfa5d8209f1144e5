import Logging
import NIOCore
import RedisClient
import Synchronization

/// One cache's near-cache: the in-memory entries (``NearCacheState``) and the tracked connection
/// pairs, one per Redis node, that keep them coherent (``TrackedConnectionPair``).
///
/// The request path never waits for anything but the first opening of a node's pair: a node whose
/// pair cannot be opened is retried after ``retryInterval`` and its keys are read as without the
/// near-cache meanwhile. Every loss of coherence — a pair closing or failing its keepalive `PING`,
/// a topology change, `FLUSHALL` — drops everything before the next lookup can see it.
final class NearCache: Sendable {
    private enum Link: Sendable {
        case opening(Task<TrackedConnectionPair?, Never>)
        case open(TrackedConnectionPair)
        case failed(until: ContinuousClock.Instant)
    }

    private struct Links: Sendable {
        var byEndpoint: [RedisConfiguration.Endpoint: Link] = [:]
        var closed = false
        var warned = false
    }

    /// How long a node whose pair could not be opened is read without the near-cache.
    static let retryInterval: Duration = .seconds(1)

    let configuration: NearCacheConfiguration
    /// The entries, kept in an object of their own: the request path's lookups touch only it.
    /// (This object is weakly referenced by the tracked connections' handlers, which gives it a
    /// side table and makes every retain of it take Swift's slow path; ``NearCacheEntries`` is never
    /// weakly referenced.)
    let entries: NearCacheEntries
    private var stripes: [NearCacheEntries.Stripe] { entries.stripes }
    private let links = Mutex(Links())
    private let observation = Mutex<TopologyObservation?>(nil)
    private let redis: RedisClient
    private let logger: Logger
    private let metrics: NearCacheMetrics
    /// Told, on the event loop, how many entries each invalidation message dropped (benchmarks).
    private let invalidationObserver = Mutex<(@Sendable (Int) -> Void)?>(nil)
    /// Counters of the whole near-cache, not of a stripe (see ``NearCacheDiagnostics``).
    private let flushes = Atomic<Int>(0)
    private let invalidationsReceived = Atomic<Int>(0)
    private let trackingConnectionsOpened = Atomic<Int>(0)

    func observeInvalidations(_ body: (@Sendable (Int) -> Void)?) {
        invalidationObserver.withLock { $0 = body }
    }

    init(configuration: NearCacheConfiguration, redis: RedisClient, logger: Logger, metricsLabel: String) {
        self.configuration = configuration
        let metrics = NearCacheMetrics(namespace: metricsLabel)
        self.entries = NearCacheEntries(configuration: configuration, metrics: metrics)
        self.redis = redis
        self.logger = logger
        self.metrics = metrics
        let observation = redis.observeTopology { [weak self] in self?.topologyChanged() }
        self.observation.withLock { $0 = observation }
    }

    deinit {
        if let observation = observation.withLock({ $0 }) { redis.stopObservingTopology(observation) }
    }

    var diagnostics: NearCacheDiagnostics {
        var total = entries.diagnostics
        total.flushes = flushes.load(ordering: .relaxed)
        total.invalidationsReceived = invalidationsReceived.load(ordering: .relaxed)
        total.trackingConnectionsOpened = trackingConnectionsOpened.load(ordering: .relaxed)
        return total
    }

    /// The `CLIENT ID`s of the open pairs' listeners (tests kill them).
    var listenerIDs: [Int64] {
        links.withLock { links in
            links.byEndpoint.values.compactMap { if case .open(let pair) = $0, pair.isActive { return pair.listenerID } else { return nil } }
        }
    }

    // MARK: The request path

    /// Reads `entry` (`TIME` + `GET`) on the tracked connection of its node and holds it when it is
    /// fresh. `nil` when no tracked connection to the node is available, or the read failed on it:
    /// the caller reads as without the near-cache.
    func read(_ entry: EntryKeys, userKey: String, generation: Int64) async -> FastRead? {
        guard let pair = await pair(routedBy: entry.value) else { return nil }
        let stripe = entries.stripe(for: userKey)
        let ticket = stripe.guarded.withLock { $0.state.ticket(for: entry.value) }
        // Checked after the ticket: a loss reported from here on bumps the ticket's session.
        guard pair.isActive else { return nil }
        let sentAt = NearInstant.now
        let read: FastRead
        do {
            let (time, value) = try await pair.send(preEncoded: FastReadCommands.time, then: RedisCommand("GET", RedisArgument(entry.value)))
            read = try FastRead(time: time, value: value)
        } catch {
            logger.debug("near-cache read failed on the tracked connection; reading without it", metadata: ["error": "\(error)"])
            return nil
        }
        guard case .entry(let stored) = read, stored.isFresh else { return read }
        let held = NearCacheEntry(stored: stored, sentAt: sentAt, generation: generation, keys: entry, userKey: userKey)
        let insertion = stripe.guarded.withLock { guarded -> NearCacheState.Insertion in
            let insertion = guarded.state.insert(userKey, held, ticket: ticket)
            switch insertion {
            case .inserted(let evicted):
                guarded.diagnostics.inserts += 1
                guarded.diagnostics.evictions += evicted
            case .raced: guarded.diagnostics.racedInserts += 1
            case .notAdmitted, .tooLarge: guarded.diagnostics.notAdmitted += 1
            }
            return insertion
        }
        switch insertion {
        case .inserted(let evicted):
            if evicted > 0 { metrics.evictions.increment(by: Int64(evicted)) }
            recordSize()
        case .notAdmitted, .tooLarge: metrics.notAdmitted.increment()
        case .raced: break
        }
        return read
    }

    /// Drops the entry stored under `valueKey` now (a write by this process: its own readers must
    /// not see the old value until Redis's invalidation arrives), and blocks reads of it in flight.
    func drop(valueKey: String) {
        if invalidate([valueKey]) > 0 { recordSize() }
    }

    /// Drops the entries stored under `valueKeys` in every stripe (an entry's stripe is chosen by
    /// its caller's key, which an invalidation does not name) and bumps their epochs.
    private func invalidate(_ valueKeys: [String]) -> Int {
        var dropped = 0
        for stripe in stripes {
            dropped += stripe.guarded.withLock { guarded -> Int in
                let dropped = guarded.state.invalidate(valueKeys: valueKeys)
                guarded.diagnostics.entriesInvalidated += dropped
                return dropped
            }
        }
        return dropped
    }

    // MARK: Coherence

    /// The open pair for the node serving `key`, opening it if needed (one opening at a time per
    /// node; a failed node is retried after ``retryInterval``).
    private func pair(routedBy key: String) async -> TrackedConnectionPair? {
        let endpoint: RedisConfiguration.Endpoint
        do {
            endpoint = try await redis.nodeEndpoint(routedBy: key)
        } catch {
            return nil
        }
        enum Next { case use(TrackedConnectionPair), wait(Task<TrackedConnectionPair?, Never>), skip }
        let now = ContinuousClock.now
        let next = links.withLock { links -> Next in
            if links.closed { return .skip }
            switch links.byEndpoint[endpoint] {
            case .open(let pair) where pair.isActive: return .use(pair)
            case .opening(let task): return .wait(task)
            case .failed(let until) where now < until: return .skip
            default:
                let task = Task { await self.open(endpoint, routedBy: key) }
                links.byEndpoint[endpoint] = .opening(task)
                return .wait(task)
            }
        }
        switch next {
        case .use(let pair): return pair
        case .wait(let task): return await task.value
        case .skip: return nil
        }
    }

    private func open(_ endpoint: RedisConfiguration.Endpoint, routedBy key: String) async -> TrackedConnectionPair? {
        do {
            let pair = try await redis.openTrackedPair(
                routedBy: key,
                onInvalidation: { [weak self] invalidation in self?.received(invalidation) },
                onLoss: { [weak self] error in self?.lost(endpoint, error) }
            )
            let installed = links.withLock { links -> Bool in
                guard !links.closed else { return false }
                links.byEndpoint[endpoint] = .open(pair)
                links.warned = false
                return true
            }
            guard installed else {
                await pair.close()
                return nil
            }
            trackingConnectionsOpened.add(1, ordering: .relaxed)
            logger.debug("near-cache tracking connections open", metadata: ["node": "\(endpoint)", "listener": "\(pair.listenerID)"])
            return pair
        } catch {
            let warn = links.withLock { links -> Bool in
                if !links.closed { links.byEndpoint[endpoint] = .failed(until: .now + Self.retryInterval) }
                defer { links.warned = true }
                return !links.warned
            }
            let metadata: Logger.Metadata = ["node": "\(endpoint)", "error": "\(error)"]
            if warn {
                logger.warning("cannot open the near-cache's tracking connections; reading from Redis without it and retrying every second", metadata: metadata)
            } else {
                logger.debug("near-cache tracking connections still unavailable", metadata: metadata)
            }
            return nil
        }
    }

    /// An invalidation message from Redis.
    private func received(_ invalidation: Invalidation) {
        if configuration.ignoresInvalidations { return }
        switch invalidation {
        case .everything:
            flush("server_flush")
        case .keys(let keys):
            invalidationsReceived.add(keys.count, ordering: .relaxed)
            let dropped = invalidate(keys)
            metrics.invalidations.increment(by: Int64(keys.count))
            if dropped > 0 { recordSize() }
            invalidationObserver.withLock { $0 }?(dropped)
        }
    }

    /// A pair closed or failed: its invalidations can no longer arrive.
    private func lost(_ endpoint: RedisConfiguration.Endpoint, _ error: RedisError) {
        let closing = links.withLock { links -> Bool in
            if case .open(let pair) = links.byEndpoint[endpoint], !pair.isActive { links.byEndpoint[endpoint] = nil }
            return links.closed
        }
        if configuration.ignoresInvalidations && !closing { return }
        flush(closing ? "closed" : "connection_lost")
        if !closing {
            logger.info("near-cache flushed: a tracking connection was lost", metadata: ["node": "\(endpoint)", "error": "\(error.message)"])
        }
    }

    /// Which node serves what may have changed: what was read from the old owner of a slot would
    /// never be invalidated by the new one.
    /// (Nothing was read through a pair while none is open or opening: the first map load is not a loss.)
    private func topologyChanged() {
        let (pairs, tracking) = links.withLock { links -> ([TrackedConnectionPair], Bool) in
            defer { links.byEndpoint.removeAll() }
            let tracking = links.byEndpoint.values.contains { if case .failed = $0 { return false } else { return true } }
            return (links.byEndpoint.values.compactMap { if case .open(let pair) = $0 { return pair } else { return nil } }, tracking)
        }
        guard tracking else { return }
        flush("topology_changed")
        for pair in pairs { Task { await pair.close() } }
    }

    private func flush(_ reason: String) {
        for stripe in stripes {
            stripe.guarded.withLock { guarded in _ = guarded.state.flush() }
        }
        flushes.add(1, ordering: .relaxed)
        metrics.flushed(reason)
        recordSize()
    }

    private func recordSize() {
        var entries = 0
        var bytes = 0
        for stripe in stripes {
            let (count, size) = stripe.guarded.withLock { ($0.state.count, $0.state.bytes) }
            entries += count
            bytes += size
        }
        metrics.entries.record(entries)
        metrics.bytes.record(bytes)
    }

    // MARK: Lifetime

    /// Pings every open pair's listener (within the command timeout); a pair that does not answer
    /// is closed, which drops everything. Called by the cache's background loop every second.
    func keepalive() async {
        let pairs = links.withLock { links -> [TrackedConnectionPair] in
            links.byEndpoint.values.compactMap { if case .open(let pair) = $0, pair.isActive { return pair } else { return nil } }
        }
        await withTaskGroup(of: Void.self) { group in
            for pair in pairs {
                group.addTask {
                    do {
                        try await pair.ping()
                    } catch {
                        self.logger.info("near-cache keepalive failed; closing its tracking connections", metadata: ["node": "\(pair.endpoint)", "error": "\(error)"])
                        await pair.close()
                    }
                }
            }
        }
    }

    /// Closes every pair and drops everything; later reads go without the near-cache.
    func close() async {
        let (pairs, tasks) = links.withLock { links -> ([TrackedConnectionPair], [Task<TrackedConnectionPair?, Never>]) in
            links.closed = true
            defer { links.byEndpoint.removeAll() }
            var pairs: [TrackedConnectionPair] = []
            var tasks: [Task<TrackedConnectionPair?, Never>] = []
            for link in links.byEndpoint.values {
                switch link {
                case .open(let pair): pairs.append(pair)
                case .opening(let task): tasks.append(task)
                case .failed: break
                }
            }
            return (pairs, tasks)
        }
        for task in tasks { _ = await task.value }  // an opening that finds the near-cache closed closes its pair
        for pair in pairs { await pair.close() }
        flush("closed")
        if let observation = observation.withLock({ state -> TopologyObservation? in defer { state = nil }; return state }) {
            redis.stopObservingTopology(observation)
        }
    }
}
