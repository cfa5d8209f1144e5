public import Logging
import NIOCore
public import RedisClient
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Redis-backed cache where, across a whole fleet of processes, exactly one worker computes a
/// missing or expired value while the others wait for it or keep serving the stale copy.
///
/// ```swift
/// let cache = try await StampedeCache(redis: client, namespace: "llm", policy: CachePolicy(
///     freshFor: .seconds(3600), staleFor: .seconds(86_400),
///     computeTimeout: .seconds(60), lockTTL: .seconds(90)))
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
public final class StampedeCache: Sendable {
    /// The namespace every key of this cache lives in.
    public let namespace: String
    /// The validated policy.
    public let policy: CachePolicy
    /// The Redis client used for everything (its subscriber connection carries the notices).
    public let redis: RedisClient
    package let keySpace: KeySpace
    let logger: Logger
    let hub: NoticeHub
    let coalescer = FlightCoalescer<Outcome>()
    let limiter: ConcurrencyLimiter?
    let generation: GenerationBox
    let metrics: CacheMetrics
    let diagnosticsBox = DiagnosticsBox()
    let background = BackgroundTasks()
    let hits = HitCounter()
    private let flushChain = Mutex<Task<Void, Never>?>(nil)
    private let flusher = Mutex<Task<Void, Never>?>(nil)

    struct Outcome: Sendable {
        var value: ByteBuffer
        var source: CacheSource
        var age: Duration
        var freshUntil: Int64?
        var coalesced = false
        /// Set when the value was computed but is not in the cache (see ``CacheResult/notCachedBecause``).
        var notCachedBecause: String? = nil

        func result<Value: Sendable>(_ value: Value) -> CacheResult<Value> {
            CacheResult(value: value, source: source, age: age, freshUntilMillis: freshUntil, coalesced: coalesced, notCachedBecause: notCachedBecause)
        }
    }

    /// How long a value handed off without being stored stays readable for the followers woken by it.
    static let handoffLifetime: Duration = .seconds(5)

    /// Creates a cache over `redis` for `namespace` (1–64 characters of `A-Z a-z 0-9 - _ .`).
    ///
    /// Validates the policy, then (best effort, so a worker can start while Redis is down) loads the
    /// scripts, reads the namespace generation and subscribes to the notice channel.
    /// - Throws: ``CacheConfigurationError`` naming the setting to change.
    public init(
        redis: RedisClient,
        namespace: String,
        policy: CachePolicy = CachePolicy(),
        logger: Logger = Logger(label: "StampedeCache")
    ) async throws(CacheConfigurationError) {
        try policy.validate()
        self.keySpace = try KeySpace(namespace: namespace)
        self.namespace = namespace
        self.policy = policy
        self.redis = redis
        self.logger = logger
        self.metrics = CacheMetrics(namespace: namespace)
        if case .failOpen(let bound) = policy.redisUnavailable {
            self.limiter = ConcurrencyLimiter(limit: bound)
        } else {
            self.limiter = nil
        }
        let generation = GenerationBox()
        self.generation = generation
        self.hub = NoticeHub(client: redis, channel: keySpace.channel, logger: logger) { newGeneration in
            generation.observe(newGeneration)
        }
        if policy.hot.ttl > .zero { startHitFlusher() }
        var scriptsLoaded = false
        do {
            try await redis.preload(CacheScripts.all)
            scriptsLoaded = true
            await refreshGeneration()
            try await hub.start()
        } catch {
            logger.warning("Redis not reachable while creating the cache; will retry on use", metadata: ["error": "\(error)"])
        }
        // An ACL that denies PUBLISH, EVALSHA, ... makes the cache degrade quietly (followers fall
        // back to polling, commits fail): say so once, at start, naming each command. (SUBSCRIBE
        // was just tried by the notice listener, and the scripts were just loaded.)
        do {
            for missing in try await Self.missingPermissions(redis: redis, namespace: namespace, subscribe: false, loadScripts: !scriptsLoaded) {
                logger.error("the Redis user lacks a permission the cache needs", metadata: ["command": "\(missing.command)", "neededFor": "\(missing.neededFor)", "server": "\(missing.serverMessage)"])
            }
        } catch {
            logger.debug("permission check skipped: Redis not reachable", metadata: ["error": "\(error)"])
        }
    }

    /// Exact counters of what this instance did (computations, wake-ups by path, takeovers, ...).
    public var diagnostics: CacheDiagnostics { diagnosticsBox.snapshot }

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
        let outcome = try await outcome(for: key, options: options) { .store(ByteBuffer(bytes: try await compute())) }
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
        let outcome = try await outcome(for: key, options: options) { try await produce().map { ByteBuffer(bytes: $0) } }
        return outcome.result(Array(outcome.value.readableBytesView))
    }

    /// The UTF-8 text value for `key` (see ``value(for:options:compute:)``).
    public func string(
        for key: String,
        options: CacheRequestOptions = CacheRequestOptions(),
        compute: @escaping @Sendable () async throws -> String
    ) async throws -> CacheResult<String> {
        let outcome = try await outcome(for: key, options: options) { .store(ByteBuffer(string: try await compute())) }
        return outcome.result(String(buffer: outcome.value))
    }

    /// Deletes one entry and tells every process; a computation already in flight may still commit.
    @discardableResult
    public func invalidate(key: String) async throws -> Bool {
        let entry = try keySpace.entry(key, generation: await currentGeneration())
        do {
            return try await redis.invalidateEntry(entry, channel: keySpace.channel)
        } catch let error as RedisError {
            throw CacheError.redisFailure(error)
        }
    }

    /// Retires every entry of the namespace at once (O(1)): bumps the generation that is part of every
    /// key. Old entries are no longer read and expire by their TTL. Returns the new generation.
    @discardableResult
    public func invalidateAll() async throws -> Int64 {
        do {
            guard let newGeneration = try await redis.send("INCR", RedisArgument(keySpace.generationKey)).int else {
                throw CacheError.redisFailure(RedisError(code: .protocolError, message: "INCR returned no integer"))
            }
            generation.observe(newGeneration)
            try await redis.publish(RedisArgument("gen|\(newGeneration)"), to: keySpace.channel)
            return newGeneration
        } catch let error as RedisError {
            throw CacheError.redisFailure(error)
        }
    }

    /// Deletes every entry committed with `tag` (via a tag index; no `KEYS` scan). Returns how many were deleted.
    @discardableResult
    public func invalidate(tag: String) async throws -> Int {
        let tagKey = keySpace.tagKey(tag)
        do {
            let members = try await redis.send("SMEMBERS", RedisArgument(tagKey)).array ?? []
            let ids = members.compactMap(\.string)
            let deleted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for id in ids {
                    group.addTask { try await self.redis.invalidateEntry(EntryKeys(id: id), channel: self.keySpace.channel) }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            try await redis.send("DEL", RedisArgument(tagKey))
            return deleted
        } catch let error as RedisError {
            throw CacheError.redisFailure(error)
        }
    }

    /// Waits for background refreshes to finish (each is bounded by ``CachePolicy/computeTimeout``)
    /// and stops listening for notices. Does not close the `RedisClient`.
    public func close() async {
        let flusher = self.flusher.withLock { task in defer { task = nil }; return task }
        flusher?.cancel()
        await flushHits()
        await background.waitForAll()
        await hub.stop()
    }

    // MARK: Hot keys

    /// How often aggregated hit counts are sent to Redis (one `hot_touch` per touched key).
    static let hitFlushInterval: Duration = .milliseconds(100)

    private func startHitFlusher() {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.hitFlushInterval)
                guard let self else { return }
                await self.flushHits()
            }
        }
        flusher.withLock { $0 = task }
    }

    /// Sends the hits counted so far; returns once they, and any flush already under way, are in Redis.
    package func flushHits() async {
        let flush = flushChain.withLock { chain -> Task<Void, Never> in
            let previous = chain
            let next = Task {
                await previous?.value
                await self.sendHits()
            }
            chain = next
            return next
        }
        await flush.value
    }

    /// Sends the hits counted since the last flush (concurrently, so they pipeline on the connection).
    private func sendHits() async {
        let batch = hits.drain()
        guard !batch.isEmpty, policy.hot.ttl > .zero else { return }
        await withTaskGroup(of: Void.self) { group in
            for (entry, count) in batch {
                group.addTask {
                    do {
                        try await self.redis.hotTouch(entry, hits: count, policy: self.policy)
                    } catch {
                        self.logger.debug("hot-key hit counts not recorded", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    // MARK: Internals shared with tests

    /// The Redis keys of `key`'s entry in the current generation.
    package func entryKeys(for key: String) async throws -> EntryKeys {
        try keySpace.entry(key, generation: await currentGeneration())
    }

    // MARK: The flight

    func outcome(
        for key: String,
        options: CacheRequestOptions,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        try options.validate()
        let entry = try keySpace.entry(key, generation: await currentGeneration())
        if policy.hot.ttl > .zero { hits.record(entry) }  // nothing would ever flush them otherwise
        var flightKey = options.maxStale.map { "\(entry.id)#\($0.wholeMilliseconds)" } ?? entry.id
        if options.forceRefresh { flightKey += "#force" }
        if options.noStore { flightKey += "#nostore" }
        var joined = false
        var outcome = try await coalescer.run(key: flightKey, joined: {
            joined = true
            metrics.coalesced.increment()
            diagnosticsBox.update { $0.coalesced += 1 }
        }) {
            try await flight(key: key, entry: entry, options: options, compute: compute)
        }
        if joined {
            outcome.coalesced = true
            // This call did not compute: it received a concurrent call's computation.
            switch outcome.source {
            case .computed, .computedNotStored, .uncachedRedisUnavailable: outcome.source = .joinedInProcess
            default: break
            }
        }
        metrics.request(outcome.source)
        return outcome
    }

    private func flight(
        key: String,
        entry: EntryKeys,
        options: CacheRequestOptions,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        // Fast path: `TIME` + `GET` in one round trip, no script. Only a fresh entry is served from
        // here; anything else (stale, missing, early refresh due, unreadable) takes the script path.
        if !options.forceRefresh {
            do {
                if case .entry(let stored) = try await redis.fastRead(entry), stored.isFresh, !earlyRefreshDue(stored) {
                    return Self.served(stored, .freshHit)
                }
            } catch {
                if Self.meansUnavailable(error) { return try await failOpen(key: key, error: error, compute: compute) }
                // Any other answer (e.g. WRONGTYPE) is handled by the script path below.
            }
        }
        if options.noStore {
            // Nothing will be stored, so take no lock and make nobody wait for this computation.
            diagnosticsBox.update { $0.computations += 1 }
            let computed = try await withHardTimeout(policy.computeTimeout, compute)
            var because = "the request asked not to store it (noStore)"
            if case .deliverWithoutStoring(_, let reason) = computed { because = reason }
            return Outcome(value: computed.value, source: .computedNotStored, age: .zero, freshUntil: nil, notCachedBecause: because)
        }
        return try await scriptedFlight(key: key, entry: entry, options: options, compute: compute)
    }

    /// XFetch (Vattani et al. 2015): refresh early with probability rising as expiry nears.
    private func earlyRefreshDue(_ stored: StoredEntry) -> Bool {
        guard policy.earlyRefreshBeta > 0, stored.computeMillis > 0 else { return false }
        let draw = Double.random(in: Double.ulpOfOne...1)
        return Double(stored.now) - Double(stored.computeMillis) * policy.earlyRefreshBeta * log(draw) >= Double(stored.freshUntil)
    }

    private func scriptedFlight(
        key: String,
        entry: EntryKeys,
        options: CacheRequestOptions,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        let started = ContinuousClock.now
        var waitedForOther = false
        var repairs = 0
        var fallback: StoredEntry?
        var force = options.forceRefresh  // only the first look: after a wait, someone just recomputed
        var retriesLeft = policy.followerRetries
        while true {
            let since = ContinuousClock.now
            let reply: GetOrLockReply
            do {
                reply = try await redis.getOrLock(entry, policy: policy, force: force)
                force = false
            } catch let error as RedisError {
                if Self.meansUnavailable(error) { return try await failOpen(key: key, error: error, compute: compute) }
                throw CacheError.redisFailure(error)
            }
            switch reply {
            case .corrupt(let reason, let role):
                // Each of the three keys can be repaired once; a key that is broken again at once is
                // being written by something else, and the caller is told.
                guard repairs < 3 else { throw CacheError.corruptEntry(key: key, reason: reason) }
                repairs += 1
                try await repair(entry, role, key: key, reason: reason)
            case .fresh(let stored):
                return Self.served(stored, waitedForOther ? .receivedFromOtherWorker : .freshHit)
            case .early(let stored, let token):
                startRefresh(key: key, entry: entry, token: token, options: options, stale: stored, compute: compute)
                return Self.served(stored, .freshHitEarlyRefresh)
            case .stale(let stored, let token, let lockRemaining):
                if accepts(stored, options) {
                    if let token {
                        startRefresh(key: key, entry: entry, token: token, options: options, stale: stored, compute: compute)
                        return Self.served(stored, .staleHit(.startedHere))
                    }
                    return Self.served(stored, .staleHit(.runningElsewhere))
                }
                fallback = stored
                if let token {
                    return try await lead(key: key, entry: entry, token: token, options: options, fallback: stored, compute: compute)
                }
                waitedForOther = true
                // Wait for a computation newer than the value we hold (a late notice of its own commit is not news).
                if let served = try await follow(key: key, entry: entry, since: since, started: started, lockRemaining: lockRemaining, fallback: fallback, minimumToken: stored.fence + 1, retriesLeft: &retriesLeft) {
                    return served
                }
            case .leader(let token, _):
                if waitedForOther {
                    metrics.takeovers.increment()
                    diagnosticsBox.update { $0.lockTakeovers += 1 }
                    logger.notice("took over an expired lock", metadata: ["key": "\(key)"])
                }
                return try await lead(key: key, entry: entry, token: token, options: options, fallback: fallback, compute: compute)
            case .wait(let holder, let lockRemaining, _):
                waitedForOther = true
                if let served = try await follow(key: key, entry: entry, since: since, started: started, lockRemaining: lockRemaining, fallback: fallback, minimumToken: holder, retriesLeft: &retriesLeft) {
                    return served
                }
            }
        }
    }

    private func accepts(_ stored: StoredEntry, _ options: CacheRequestOptions) -> Bool {
        if options.forceRefresh { return false }
        guard let maxStale = options.maxStale else { return true }
        return stored.staleness <= maxStale
    }

    /// An entry just read from Redis (within its servable window: the script and the fast path
    /// checked it on the server clock).
    private static func served(_ stored: StoredEntry, _ source: CacheSource) -> Outcome {
        Outcome(value: stored.value, source: source, age: stored.age, freshUntil: stored.freshUntil)
    }

    /// A stale copy held while waiting or computing, served as a fail-safe only while it is still
    /// within its servable window (fresh-until + staleFor, on the server clock, aged by the time it
    /// was held here): no answer is ever older than the policy allows. `nil` when it is too old.
    private static func fallback(_ stored: StoredEntry?, _ source: CacheSource) -> Outcome? {
        guard let stored else { return nil }
        let now = ContinuousClock.now
        guard stored.isServable(at: now) else { return nil }
        let aged = stored.aged(to: now)
        return Outcome(value: aged.value, source: source, age: aged.age, freshUntil: aged.freshUntil)
    }

    /// Redis cannot coordinate this request: unreachable, too slow, shutting down, or out of memory
    /// (`-OOM` under `maxmemory` with `noeviction`, or when eviction cannot free enough), so it
    /// cannot take the lock. The request then fails open or closed as ``CachePolicy/redisUnavailable`` says.
    static func meansUnavailable(_ error: RedisError) -> Bool {
        error.code == .connection || error.code == .timeout || error.code == .shutdown || isOutOfMemory(error)
    }

    /// Redis refused a write because it is at `maxmemory`.
    static func isOutOfMemory(_ error: RedisError) -> Bool {
        error.code == .server && error.message.hasPrefix("OOM ")
    }

    /// Waits as a follower. Returns an outcome to serve, or `nil` to re-check with get-or-lock.
    private func follow(
        key: String, entry: EntryKeys, since: ContinuousClock.Instant, started: ContinuousClock.Instant,
        lockRemaining: Duration, fallback: StoredEntry?, minimumToken: Int64, retriesLeft: inout Int
    ) async throws -> Outcome? {
        let waited = ContinuousClock.now - started
        let maxWait = policy.effectiveMaxWait
        if waited >= maxWait {
            if let served = Self.fallback(fallback, .staleAfterFailure(reason: "waited \(waited) for another worker")) { return served }
            throw CacheError.waitTimedOut(key: key, waited: waited)
        }
        // A refresh of this entry failed moments ago and its lease is held as a fail-safe throttle:
        // serve the stale value now instead of waiting out the throttle.
        if fallback != nil, policy.failSafeThrottle > .zero,
           let message = await hub.recentFailure(for: entry.id, within: policy.failSafeThrottle),
           let served = Self.fallback(fallback, .staleAfterFailure(reason: message)) {
            return served
        }
        if !(await hub.isSubscribed) {
            do { try await hub.start() } catch { logger.debug("notice channel unavailable; falling back to re-checks", metadata: ["error": "\(error)"]) }
        }
        // Wake on the notice; else re-check when the holder's lock would have expired, or at the fallback interval.
        let timeout = min(policy.followerRecheckInterval, lockRemaining + .milliseconds(15), maxWait - waited)
        diagnosticsBox.update { $0.followerWaits += 1 }
        let waitStart = ContinuousClock.now
        let wake = await hub.wait(for: entry.id, since: since, minimumToken: minimumToken, timeout: max(timeout, .milliseconds(1)))
        metrics.waitTime.recordNanoseconds((ContinuousClock.now - waitStart).nanosecondsClamped)
        switch wake {
        case .notice(.failed(_, let message, let retryable)):
            metrics.wakeup("notice")
            diagnosticsBox.update { $0.wakeupsByNotice += 1 }
            if let served = Self.fallback(fallback, .staleAfterFailure(reason: message)) { return served }
            if retryable, retriesLeft > 0 {
                // Back to get-or-lock: one of the followers becomes the next leader, the rest wait for it.
                retriesLeft -= 1
                diagnosticsBox.update { $0.followerRetries += 1 }
                return nil
            }
            throw CacheError.computationFailedElsewhere(key: key, message: message)
        case .notice(.delivered(let token, let reason)):
            metrics.wakeup("notice")
            diagnosticsBox.update { $0.wakeupsByNotice += 1 }
            do {
                if let value = try await redis.handedOff(entry, token: token) {
                    diagnosticsBox.update { $0.handoffsReceived += 1 }
                    return Outcome(value: value, source: .receivedFromOtherWorker, age: .zero, freshUntil: nil, notCachedBecause: reason)
                }
            } catch {
                logger.debug("could not read a handed-off value; re-checking", metadata: ["key": "\(key)", "error": "\(error)"])
            }
            // Gone already (or unreadable): back to get-or-lock.
        case .notice:
            metrics.wakeup("notice")
            diagnosticsBox.update { $0.wakeupsByNotice += 1 }
        case .reconnected:
            metrics.wakeup("reconnect")
            diagnosticsBox.update { $0.wakeupsByReconnect += 1 }
        case .timedOut:
            metrics.wakeup("recheck")
            diagnosticsBox.update { $0.wakeupsByRecheck += 1 }
        }
        return nil
    }

    /// This caller holds the lock: compute in an owned task (not cancelled with the caller), commit, return.
    private func lead(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, fallback: StoredEntry?,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        let hold = fallback == nil ? Duration.zero : policy.failSafeThrottle
        let task = background.spawn {
            try await self.computeAndCommit(key: key, entry: entry, token: token, options: options, fallback: fallback, hold: hold, compute: compute)
        }
        return try await task.value
    }

    private func startRefresh(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, stale: StoredEntry,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) {
        diagnosticsBox.update { $0.refreshesStarted += 1 }
        _ = background.spawn {
            try await self.computeAndCommit(key: key, entry: entry, token: token, options: options, fallback: stale, hold: self.policy.failSafeThrottle, compute: compute)
        }
    }

    private func computeAndCommit(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, fallback: StoredEntry?, hold: Duration,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        diagnosticsBox.update { $0.computations += 1 }
        let started = ContinuousClock.now
        let computed: Computed<ByteBuffer>
        do {
            let context = ComputationContext(namespace: namespace, key: key, fenceToken: token)
            computed = try await StampedeCache.$computation.withValue(context) {
                try await withHardTimeout(policy.computeTimeout, compute)
            }
        } catch {
            let timedOut = error is ComputeTimedOut
            // A computation that ran out its computeTimeout is not retried by its followers: they have
            // already waited that long, and the upstream that just answered too slowly (it may even
            // have answered, too late, and been paid) is unlikely to be faster for them.
            let retryable = !timedOut && ((error as? any RetryClassifiedError)?.retryCanSucceed ?? true)
            diagnosticsBox.update { $0.failedComputations += 1 }
            metrics.computation(timedOut ? "timeout" : "failed")
            let message = timedOut ? "timed out after \(policy.computeTimeout)" : String(describing: error)
            logger.warning("computation failed; releasing the lock", metadata: ["key": "\(key)", "error": "\(message)", "retryable": "\(retryable)"])
            do {
                try await redis.release(entry, token: token, channel: keySpace.channel, failure: String(message.prefix(500)), retryable: retryable, hold: hold)
            } catch {
                logger.warning("could not release the lock; it expires by its TTL", metadata: ["key": "\(key)", "error": "\(error)"])
            }
            if let served = Self.fallback(fallback, .staleAfterFailure(reason: message)) { return served }
            if timedOut { throw CacheError.computationTimedOut(key: key, timeout: policy.computeTimeout) }
            throw error
        }
        let computeTime = ContinuousClock.now - started
        metrics.computeTime.recordNanoseconds(computeTime.nanosecondsClamped)
        let value = computed.value
        guard value.readableBytes <= policy.maxValueBytes else {
            metrics.computation("too_large")
            let error = CacheError.valueTooLarge(key: key, size: value.readableBytes, limit: policy.maxValueBytes)
            _ = try? await redis.release(entry, token: token, channel: keySpace.channel, failure: error.description, retryable: false, hold: .zero)
            throw error
        }
        if case .deliverWithoutStoring(_, let reason) = computed {
            metrics.computation("not_stored")
            await handOff(key: key, entry: entry, token: token, value: value, reason: reason)
            return Outcome(value: value, source: .computedNotStored, age: .zero, freshUntil: nil, notCachedBecause: reason)
        }
        metrics.computation("ok")
        do {
            let reply = try await redis.commit(
                entry, token: token, value: value, policy: policy, freshFor: options.freshFor ?? policy.freshFor,
                computeTime: computeTime, channel: keySpace.channel
            )
            switch reply {
            case .accepted(let freshUntil, let staleUntil, let now):
                if !options.tags.isEmpty { await index(entry, tags: options.tags, retention: .milliseconds(staleUntil - now)) }
                return Outcome(value: value, source: .computed, age: .zero, freshUntil: freshUntil)
            case .rejected(let reason, let currentFence):
                diagnosticsBox.update { $0.rejectedCommits += 1 }
                metrics.rejectedCommit(reason)
                logger.warning("commit rejected by fencing; a newer value stays", metadata: ["key": "\(key)", "token": "\(token)", "fence": "\(currentFence)", "reason": "\(reason)"])
                return Outcome(value: value, source: .computed, age: .zero, freshUntil: nil, notCachedBecause: "a newer computation's value is stored (fence \(currentFence) > token \(token))")
            }
        } catch {
            // The value was computed but could not be stored. The lock must not outlive this: hand
            // the value to the waiting followers (which releases the lock), or at least release it.
            let message = (error as? RedisError)?.message ?? String(describing: error)
            diagnosticsBox.update { $0.failedCommits += 1 }
            metrics.commitFailures.increment()
            logger.error("commit failed; the value is returned but not cached", metadata: ["key": "\(key)", "error": "\(message)"])
            let reason = "the commit failed: \(message)"
            await handOff(key: key, entry: entry, token: token, value: value, reason: reason)
            return Outcome(value: value, source: .computed, age: .zero, freshUntil: nil, notCachedBecause: reason)
        }
    }

    /// Gives a computed value that will not be stored to the followers waiting for `token` and
    /// releases the lock; if Redis refuses even that, releases the lock with a failure notice.
    private func handOff(key: String, entry: EntryKeys, token: Int64, value: ByteBuffer, reason: String) async {
        do {
            try await redis.handOff(entry, token: token, value: value, reason: reason, lifetime: Self.handoffLifetime, channel: keySpace.channel)
            diagnosticsBox.update { $0.handoffsGiven += 1 }
            return
        } catch {
            logger.warning("could not hand the value to waiting followers; releasing the lock", metadata: ["key": "\(key)", "error": "\(error)"])
        }
        do {
            try await redis.release(entry, token: token, channel: keySpace.channel, failure: String(reason.prefix(500)), retryable: true, hold: .zero)
        } catch {
            logger.warning("could not release the lock; it expires by its TTL", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    private func index(_ entry: EntryKeys, tags: [String], retention: Duration) async {
        let ttl = RedisArgument((retention + .seconds(60)).wholeMilliseconds)
        for tag in tags {
            let key = RedisArgument(keySpace.tagKey(tag))
            do {
                try await redis.send("SADD", key, RedisArgument(entry.id))
                try await redis.send("PEXPIRE", key, ttl, "NX")
                try await redis.send("PEXPIRE", key, ttl, "GT")
            } catch {
                logger.warning("could not index a tag", metadata: ["tag": "\(tag)", "error": "\(error)"])
            }
        }
    }

    /// Deletes exactly the key of the entry that holds something foreign (a valid value is never
    /// deleted because its lock or fence key is broken; a deleted fence counter is re-seeded above
    /// the entry's committed fence at the next issuance).
    private func repair(_ entry: EntryKeys, _ role: EntryKeyRole, key: String, reason: String) async throws {
        metrics.corrupt.increment()
        diagnosticsBox.update { $0.corruptEntries += 1 }
        let redisKey: String
        switch role {
        case .value: redisKey = entry.value
        case .lock: redisKey = entry.lock
        case .fence: redisKey = entry.fence
        }
        logger.error("foreign or corrupt data in the entry's \(role.rawValue) key; deleting that key only", metadata: ["key": "\(key)", "redisKey": "\(redisKey)", "reason": "\(reason)"])
        do {
            try await redis.send("DEL", RedisArgument(redisKey))
        } catch {
            throw CacheError.corruptEntry(key: key, reason: "\(reason) (in the \(role.rawValue) key \(redisKey), which could not be deleted: \(error))")
        }
    }

    private func failOpen(key: String, error: RedisError, compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>) async throws -> Outcome {
        metrics.redisUnavailable.increment()
        guard let limiter else { throw CacheError.redisUnavailable(error) }
        logger.warning("Redis unavailable; computing without the cache (fail-open)", metadata: ["key": "\(key)", "error": "\(error.message)"])
        let timeout = policy.computeTimeout
        let value = try await limiter.withPermit {
            do {
                return try await withHardTimeout(timeout, compute)
            } catch is ComputeTimedOut {
                throw CacheError.computationTimedOut(key: key, timeout: timeout)
            }
        }
        return Outcome(value: value.value, source: .uncachedRedisUnavailable, age: .zero, freshUntil: nil, notCachedBecause: "Redis is unavailable: \(error.message)")
    }

    // MARK: Generation

    func currentGeneration() async -> Int64 {
        let (value, needsRefresh) = generation.read(maxAge: .seconds(1))
        if needsRefresh {
            _ = background.spawn { await self.refreshGeneration() }
        }
        return value
    }

    func refreshGeneration() async {
        do {
            let reply = try await redis.send("GET", RedisArgument(keySpace.generationKey))
            generation.observe(reply.int ?? 0)
        } catch {
            generation.refreshFailed()
        }
    }
}

/// What a compute closure is computing, readable inside it (and in anything it calls) as
/// ``StampedeCache/computation``, e.g. to send the fence token to the upstream for tracing.
public struct ComputationContext: Sendable, Hashable {
    /// The cache's namespace.
    public var namespace: String
    /// The caller's key.
    public var key: String
    /// The fence token of the lock or lease this computation holds.
    public var fenceToken: Int64?
}

extension StampedeCache {
    /// The computation the current task is running for the cache, if any.
    @TaskLocal public static var computation: ComputationContext?
}

/// Hits per entry since the last flush (hot-key promotion is counted in batches, off the hit path).
final class HitCounter: Sendable {
    private let counts = Mutex<[String: (EntryKeys, Int)]>([:])

    func record(_ entry: EntryKeys) {
        counts.withLock { counts in
            if let current = counts[entry.id] {
                counts[entry.id] = (entry, current.1 + 1)
            } else {
                counts[entry.id] = (entry, 1)
            }
        }
    }

    func drain() -> [(EntryKeys, Int)] {
        counts.withLock { counts in
            defer { counts = [:] }
            return Array(counts.values)
        }
    }
}

/// The namespace generation this process uses, refreshed at most once a second and on `gen|N` notices.
/// Lock-free: read on every call.
final class GenerationBox: Sendable {
    private let value = Atomic<Int64>(0)
    /// Monotonic nanoseconds of the last refresh; 0 = never.
    private let refreshedAt = Atomic<Int64>(0)
    private let refreshing = Atomic<Bool>(false)
    private static let start = ContinuousClock.now

    private static func nanosecondsSinceStart() -> Int64 {
        max(1, (ContinuousClock.now - start).nanosecondsClamped)
    }

    /// The current value, and whether the caller should start a refresh (only one at a time).
    func read(maxAge: Duration) -> (Int64, Bool) {
        let current = value.load(ordering: .relaxed)
        let last = refreshedAt.load(ordering: .relaxed)
        guard last == 0 || Self.nanosecondsSinceStart() - last > maxAge.nanosecondsClamped else { return (current, false) }
        let won = refreshing.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        return (current, won)
    }

    func observe(_ newValue: Int64) {
        var current = value.load(ordering: .relaxed)
        while newValue > current {
            let (exchanged, original) = value.compareExchange(expected: current, desired: newValue, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
        refreshedAt.store(Self.nanosecondsSinceStart(), ordering: .relaxed)
        refreshing.store(false, ordering: .relaxed)
    }

    func refreshFailed() {
        refreshing.store(false, ordering: .relaxed)
    }
}

/// Tasks the cache owns (computations, refreshes): they outlive callers' cancellation; `close()` waits for them.
final class BackgroundTasks: Sendable {
    private struct State {
        var running: [UInt64: Task<Void, Never>] = [:]
        var finishedEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func spawn<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) -> Task<T, any Error> {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        let task = Task { try await operation() }
        let tracker = Task {
            _ = try? await task.value
            self.state.withLock { state in
                if state.running.removeValue(forKey: id) == nil { state.finishedEarly.insert(id) }
            }
        }
        state.withLock { state in
            if state.finishedEarly.remove(id) == nil { state.running[id] = tracker }
        }
        return task
    }

    var count: Int { state.withLock { $0.running.count } }

    func waitForAll() async {
        while true {
            let pending = state.withLock { Array($0.running.values) }
            if pending.isEmpty { return }
            for task in pending { await task.value }
        }
    }
}
