public import Logging
public import NIOCore
public import RedisClient
public import ServiceLifecycle
import Synchronization

/// A Redis-backed cache where, across a whole fleet of processes, exactly one worker computes a
/// missing or expired value while the others wait for it or keep serving the stale copy.
///
/// ```swift
/// let cache = try StampedeCache(redis: client, namespace: "llm", policy: CachePolicy(
///     freshFor: .seconds(3600), staleFor: .seconds(86_400),
///     computeTimeout: .seconds(60), lockTTL: .seconds(90)))
/// let services = ServiceGroup(services: [client, cache], logger: logger)   // or: try await cache.run()
/// let result = try await cache.value(for: "answer:42") { try await expensiveCall() }
/// print(result.value, result.source, result.age)
/// ```
///
/// How it works: one Lua script (`get_or_lock`) reads the entry, counts the hit for hot-key
/// promotion and, when the caller must compute, grants a fenced lock — all in one round trip and on
/// the Redis server's clock. The leader computes under ``CachePolicy/computeTimeout`` and commits
/// with its fence token (a late "zombie" commit with an older token is rejected); the commit
/// publishes a notice that wakes every follower in every process through one shared subscriber
/// connection. Concurrent callers for one key inside a process share one Redis call.
///
/// ## Lifetime
///
/// The cache is a swift-service-lifecycle `Service`. ``run()`` owns its background work — sending
/// hot-key hit counts, refreshing the namespace generation — and ends it on graceful shutdown,
/// then closes the cache. Requests work before and without `run()` (the notice channel is
/// subscribed on first need, the generation is read on use), but hot keys are only promoted while
/// `run()` runs. ``close()`` (or the end of `run()`) is final: a closed cache refuses new work with
/// ``CacheError/Code/closed`` and never subscribes again.
///
/// Cancelling a caller cancels only that caller: it gets `CancellationError`, while a computation
/// it started goes on for the callers waiting for it (and is stored for the fleet).
public final class StampedeCache: Sendable, Service {
    /// The namespace every key of this cache lives in.
    public let namespace: String
    /// The validated policy.
    public let policy: CachePolicy
    /// The Redis client used for everything (its subscriber connection carries the notices).
    public let redis: RedisClient
    package let keySpace: KeySpace
    /// The names of recently read keys, built once (``RecentEntryKeys``).
    let recentKeys: RecentEntryKeys
    /// Recently decoded values of ``CacheValueCoding`` types, by the bytes they came from.
    let recentValues = RecentDecodedValues()
    let logger: Logger
    /// The notice listener shared by every cache on ``redis``.
    let hub: NoticeHub
    let registration: NoticeHub.Registration
    let coalescer = FlightCoalescer<Outcome>()
    /// Values answered before their background commit landed (``CachePolicy/commitInBackground``).
    let pendingCommits: PendingCommits<Outcome>
    /// Whether lookups read the entry before running `get_or_lock`, from what recent ones found.
    let lookups = LookupHistory()
    /// The computations of this process that in-process joiners may follow live.
    package let liveAnnouncements = LiveAnnouncements()
    let limiter: ConcurrencyLimiter?
    let generation: GenerationBox
    let metrics: CacheMetrics
    let diagnosticsBox = DiagnosticsBox()
    let background = BackgroundTasks()
    let hits = HitCounter()
    let lifecycle = Lifecycle()
    let flushing = FlushSerializer()
    /// The in-process near-cache, when configured.
    let near: NearCache?
    /// `near`'s entries, read by every near hit (see ``NearCacheEntries``).
    let nearEntries: NearCacheEntries?
    /// The server's clock as last sampled: fresh hits skip `TIME` while it is usable.
    let serverClock = ServerClock()
    /// Batches concurrent fresh reads into one `MGET` (``ReadBatcher``).
    let reads: ReadBatcher
    private let topologyObservation: TopologyObservation

    struct Outcome: Sendable {
        var value: ByteBuffer
        var source: CacheSource
        var age: Duration
        var freshUntil: Int64?
        /// How much longer the value stays fresh, by the server clock when it was read or stored.
        var remainingFreshness: Duration? = nil
        var coalesced = false
        /// Set when the value was computed but is not in the cache (see ``CacheResult/notCachedBecause``).
        var notCachedBecause: String? = nil

        func result<Value: Sendable>(_ value: Value) -> CacheResult<Value> {
            var result = CacheResult(value: value, source: source, age: age, freshUntilMillis: freshUntil, coalesced: coalesced, notCachedBecause: notCachedBecause)
            result.remainingFreshness = remainingFreshness
            return result
        }
    }

    /// How long a value handed off without being stored stays readable for the followers woken by it.
    static let handoffLifetime: Duration = .seconds(5)

    /// Creates a cache over `redis` for `namespace` (1–64 characters of `A-Z a-z 0-9 - _ .`).
    ///
    /// Synchronous and free of I/O: it validates the policy and the namespace and registers the
    /// namespace's notice channel with the client's shared listener. Run the cache (``run()``, or in
    /// a `ServiceGroup`) to load the scripts ahead of the first request, check the Redis user's
    /// permissions and keep the background work going.
    /// `metricsLabel` is the `namespace` label of this cache's metrics (default: the namespace);
    /// give a family of short-lived namespaces (one per API key, say) one label so the number of
    /// metric series stays bounded. `nearCache` turns on the in-process near-cache
    /// (``NearCacheConfiguration``; default off).
    /// - Throws: ``CacheConfigurationError`` naming the setting to change.
    public init(
        redis: RedisClient,
        namespace: String,
        policy: CachePolicy = CachePolicy(),
        logger: Logger = Logger(label: "StampedeCache"),
        metricsLabel: String? = nil,
        nearCache: NearCacheConfiguration? = nil
    ) throws(CacheConfigurationError) {
        try policy.validate()
        try nearCache?.validate()
        self.keySpace = try KeySpace(namespace: namespace)
        self.recentKeys = RecentEntryKeys(keySpace: keySpace)
        self.namespace = namespace
        self.policy = policy
        self.redis = redis
        self.logger = logger
        self.metrics = CacheMetrics(namespace: metricsLabel ?? namespace)
        self.pendingCommits = PendingCommits(meter: metrics.pendingCommits)
        self.reads = ReadBatcher(redis: redis, limit: redis.configuration.poolSize, clock: serverClock, counters: (metrics.batchedReads, metrics.readBatches))
        let near = nearCache.map { NearCache(configuration: $0, redis: redis, logger: logger, metricsLabel: metricsLabel ?? namespace) }
        self.near = near
        self.nearEntries = near?.entries
        if case .failOpen(let bound) = policy.redisUnavailable {
            self.limiter = ConcurrencyLimiter(limit: bound)
        } else {
            self.limiter = nil
        }
        let generation = GenerationBox()
        self.generation = generation
        self.hub = NoticeHub.shared(for: redis, logger: logger)
        self.registration = hub.register(channel: keySpace.channel) { newGeneration in generation.observe(newGeneration) }
        // Another primary (Sentinel failover) has another clock: sample it again.
        self.topologyObservation = redis.observeTopology { [serverClock] in serverClock.invalidate() }
    }

    deinit {
        redis.stopObservingTopology(topologyObservation)
        // A cache dropped without close() still releases its notice channel.
        hub.unregister(registration)
    }

    /// Exact counters of what this instance did (computations, wake-ups by path, takeovers, ...).
    public var diagnostics: CacheDiagnostics { diagnosticsBox.snapshot }

    /// Exact counters of the near-cache (hits, inserts, invalidations, flushes, entries and bytes
    /// held); `nil` without one.
    public var nearCacheDiagnostics: NearCacheDiagnostics? { near?.diagnostics }

    /// The `CLIENT ID`s of the near-cache's open invalidation listeners, one per node (tests, tools).
    package var nearCacheListenerIDs: [Int64] { near?.listenerIDs ?? [] }

    /// Calls `body` (on an event loop; it must not block) with the number of near entries each
    /// invalidation message from Redis dropped (benchmarks time invalidations with it).
    package func observeNearCacheInvalidations(_ body: (@Sendable (Int) -> Void)?) {
        near?.observeInvalidations(body)
    }

    /// Callers of this process's client that are waiting for another worker's computation right now
    /// (tools synchronise on it instead of sleeping).
    package var waitingFollowers: Int { hub.waiterCount }

    // MARK: Public API

    /// The value for `key`: from the cache, from another worker's computation, or computed here.
    ///
    /// - Parameters:
    ///   - key: any text up to 1 KiB (hash longer keys); it is escaped into a Redis key.
    ///   - options: staleness limit, freshness override and tags for this call.
    ///   - compute: produces the value when this worker must compute it; runs at most once per key
    ///     fleet-wide at a time, under ``CachePolicy/computeTimeout``, in a task this cache owns (it
    ///     is not cancelled when this caller is).
    /// - Returns: the value, where it came from, and its age by the Redis server's clock.
    /// - Throws: the error thrown by `compute` (when it ran here), or ``CacheError``.
    public func value(
        for key: String,
        options: CacheRequestOptions = CacheRequestOptions(),
        compute: @escaping @Sendable () async throws -> [UInt8]
    ) async throws -> CacheResult<[UInt8]> {
        let near = try nearLookup(for: key, options: options)
        if case .hit(let outcome) = near { return outcome.result(Array(outcome.value.readableBytesView)) }
        let first = try await firstLook(for: key, options: options)
        if case .answered(let outcome) = first { return outcome.result(Array(outcome.value.readableBytesView)) }
        let outcome = try await outcome(for: key, options: options, nearAsked: near.asked, after: first.read) { .store(ByteBuffer(bytes: try await compute())) }
        return outcome.result(Array(outcome.value.readableBytesView))
    }

    /// The value for `key`, where the computation may decide not to store what it computed
    /// (``Computed/deliverWithoutStoring(_:reason:)``): the callers waiting for it at that moment,
    /// in every process, still receive it, and nothing is written to the entry.
    /// See ``value(for:options:compute:)`` for everything else.
    public func value(
        for key: String,
        options: CacheRequestOptions = CacheRequestOptions(),
        produce: @escaping @Sendable () async throws -> Computed<[UInt8]>
    ) async throws -> CacheResult<[UInt8]> {
        let near = try nearLookup(for: key, options: options)
        if case .hit(let outcome) = near { return outcome.result(Array(outcome.value.readableBytesView)) }
        let first = try await firstLook(for: key, options: options)
        if case .answered(let outcome) = first { return outcome.result(Array(outcome.value.readableBytesView)) }
        let outcome = try await outcome(for: key, options: options, nearAsked: near.asked, after: first.read) { try await produce().map { ByteBuffer(bytes: $0) } }
        return outcome.result(Array(outcome.value.readableBytesView))
    }

    /// The value for `key` as a `ByteBuffer` that shares the bytes Redis sent (or the near-cache
    /// holds): no copy on a hit. See ``value(for:options:compute:)`` for everything else.
    public func buffer(
        for key: String,
        options: CacheRequestOptions = CacheRequestOptions(),
        compute: @escaping @Sendable () async throws -> ByteBuffer
    ) async throws -> CacheResult<ByteBuffer> {
        let near = try nearLookup(for: key, options: options)
        if case .hit(let outcome) = near { return outcome.result(outcome.value) }
        let first = try await firstLook(for: key, options: options)
        if case .answered(let outcome) = first { return outcome.result(outcome.value) }
        let outcome = try await outcome(for: key, options: options, nearAsked: near.asked, after: first.read) { .store(try await compute()) }
        return outcome.result(outcome.value)
    }

    /// The UTF-8 text value for `key` (see ``value(for:options:compute:)``).
    public func string(
        for key: String,
        options: CacheRequestOptions = CacheRequestOptions(),
        compute: @escaping @Sendable () async throws -> String
    ) async throws -> CacheResult<String> {
        let near = try nearLookup(for: key, options: options)
        if case .hit(let outcome) = near { return outcome.result(String(buffer: outcome.value)) }
        let first = try await firstLook(for: key, options: options)
        if case .answered(let outcome) = first { return outcome.result(String(buffer: outcome.value)) }
        let outcome = try await outcome(for: key, options: options, nearAsked: near.asked, after: first.read) { .store(ByteBuffer(string: try await compute())) }
        return outcome.result(String(buffer: outcome.value))
    }


    // MARK: Internals shared with tests

    /// The Redis keys of `key`'s entry in the current generation.
    package func entryKeys(for key: String) async throws -> EntryKeys {
        try keySpace.entry(key, generation: await currentGeneration())
    }
}
