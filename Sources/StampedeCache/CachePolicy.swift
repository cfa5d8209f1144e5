/// How long entries live, how computations are bounded, and when keys count as hot.
///
/// ```swift
/// let policy = CachePolicy(
///     freshFor: .seconds(3600), staleFor: .seconds(86_400),
///     computeTimeout: .seconds(60), lockTTL: .seconds(90),
///     hot: .init(threshold: 10, window: .seconds(3600), ttl: .seconds(6 * 3600)),
///     ttlJitter: 0.1)
/// try policy.validate()
/// ```
/// ``validate()`` (also run by ``StampedeCache/init(redis:namespace:policy:logger:)``) rejects
/// settings that cannot be safe, saying which value to change.
public struct CachePolicy: Sendable, Hashable {
    /// Hot-key promotion: keys hit at least `threshold` times within a sliding `window` are *hot*;
    /// each further hit extends how long their entry is **kept** to at least now + `ttl`.
    /// Freshness is never extended: hot answers are still refreshed every ``CachePolicy/freshFor``.
    public struct HotKeys: Sendable, Hashable {
        /// Hits within one window that make a key hot (≥ 1).
        public var threshold: Int
        /// The sliding window the hits are counted over.
        public var window: Duration
        /// How far ahead a hit on a hot key pushes its retention (stale-until).
        public var ttl: Duration

        /// Creates a hot-key policy.
        public init(threshold: Int = 10, window: Duration = .seconds(3600), ttl: Duration = .seconds(6 * 3600)) {
            self.threshold = threshold
            self.window = window
            self.ttl = ttl
        }
    }

    /// What to do when Redis cannot be reached.
    public enum RedisUnavailable: Sendable, Hashable {
        /// Compute directly (uncached), at most `maxConcurrentComputations` at a time in this process,
        /// and say so in ``CacheSource/uncachedRedisUnavailable``.
        case failOpen(maxConcurrentComputations: Int)
        /// Throw ``CacheError/Code/redisUnavailable``.
        case failClosed
    }

    /// How long a committed value is fresh (served without any refresh).
    public var freshFor: Duration
    /// How long after freshness ends the value may still be served while one worker refreshes it.
    public var staleFor: Duration
    /// The hard limit on one computation; a computation still running then is abandoned.
    public var computeTimeout: Duration
    /// How long a compute lock lives. Must exceed ``computeTimeout`` by at least ``minimumLockMargin``,
    /// so a lock never expires under a computation that is still allowed to finish.
    public var lockTTL: Duration
    /// Hot-key promotion settings.
    public var hot: HotKeys
    /// Random shortening of freshness, as a fraction in [0, 0.5], so keys written together don't expire together.
    public var ttlJitter: Double
    /// XFetch early refresh (Vattani et al. 2015): recompute before expiry with a probability that
    /// rises as expiry nears, scaled by the measured compute time. `0` turns it off (the default); `1` is the paper's choice.
    public var earlyRefreshBeta: Double
    /// Values larger than this are rejected before anything is written (default 8 MiB).
    public var maxValueBytes: Int
    /// After a failed refresh, how long the lock is held so no worker retries a failing upstream;
    /// stale values keep being served meanwhile. `.zero` releases at once.
    public var failSafeThrottle: Duration
    /// Fallback re-check for followers in case a completion notice is lost.
    public var followerRecheckInterval: Duration
    /// The longest a follower waits for another worker's computation before failing with
    /// ``CacheError/Code/waitTimedOut``. Default: 2 × ``lockTTL``.
    public var maxWait: Duration?
    /// How long fence counters outlive their entry (protects against very late zombie writers).
    public var fenceRetention: Duration
    /// How many times a follower whose awaited computation failed, and who has no stale value to
    /// serve, goes back to get-or-lock (becoming the next leader, or waiting for it) before it
    /// returns ``CacheError/Code/computationFailedElsewhere``. Each retry round costs at
    /// most one upstream call fleet-wide. Default `1`: followers get one fresh single-flight round,
    /// so a transient failure reaches no more callers than cache-aside would give them. A failure
    /// that a retry cannot fix (a ``RetryClassifiedError`` whose ``RetryClassifiedError/retryCanSucceed``
    /// is `false`, e.g. an HTTP 400 from the upstream) or a computation that ran out
    /// ``computeTimeout`` is handed to every follower at once. `0`
    /// hands every failure to the followers at once.
    public var followerRetries: Int
    /// Behaviour when Redis is unreachable.
    public var redisUnavailable: RedisUnavailable
    /// Answer the computing worker's callers as soon as the value is computed, and commit it to
    /// Redis after that, in a task the cache owns (default `false`: callers return once the commit
    /// is answered). It saves the commit's round trip on every miss.
    ///
    /// The fleet-wide guarantees do not change: the lock is held until the commit lands, so no other
    /// worker computes the key meanwhile, and other processes' followers receive the value when it
    /// is committed. This process's callers for the key receive it from memory until then
    /// (``CacheSource/joinedInProcess``). What the caller no longer learns is the commit's outcome:
    /// a commit that fails or is fenced off is logged and counted
    /// (``CacheDiagnostics/failedCommits``, ``CacheDiagnostics/rejectedCommits``), and
    /// ``CacheResult/notCachedBecause`` stays `nil`. ``CacheResult/freshUntilMillis`` is `nil` (the
    /// commit sets it) and ``CacheResult/remainingFreshness`` is the least the value will have,
    /// `freshFor × (1 - ttlJitter)`. ``StampedeCache/close()`` waits for commits still under way.
    public var commitInBackground: Bool

    /// The least by which ``lockTTL`` must exceed ``computeTimeout``: max(1 s, 10% of computeTimeout).
    public var minimumLockMargin: Duration {
        max(.seconds(1), computeTimeout / 10)
    }

    /// Creates a policy. Defaults suit LLM answers: fresh 1 h, stale 1 day, 60 s compute, 90 s lock.
    public init(
        freshFor: Duration = .seconds(3600),
        staleFor: Duration = .seconds(86_400),
        computeTimeout: Duration = .seconds(60),
        lockTTL: Duration = .seconds(90),
        hot: HotKeys = .init(),
        ttlJitter: Double = 0.1,
        earlyRefreshBeta: Double = 0,
        maxValueBytes: Int = 8 << 20,
        failSafeThrottle: Duration = .seconds(5),
        followerRecheckInterval: Duration = .seconds(1),
        maxWait: Duration? = nil,
        fenceRetention: Duration = .seconds(3600),
        redisUnavailable: RedisUnavailable = .failOpen(maxConcurrentComputations: 8),
        followerRetries: Int = 1,
        commitInBackground: Bool = false
    ) {
        self.commitInBackground = commitInBackground
        self.followerRetries = followerRetries
        self.freshFor = freshFor
        self.staleFor = staleFor
        self.computeTimeout = computeTimeout
        self.lockTTL = lockTTL
        self.hot = hot
        self.ttlJitter = ttlJitter
        self.earlyRefreshBeta = earlyRefreshBeta
        self.maxValueBytes = maxValueBytes
        self.failSafeThrottle = failSafeThrottle
        self.followerRecheckInterval = followerRecheckInterval
        self.maxWait = maxWait
        self.fenceRetention = fenceRetention
        self.redisUnavailable = redisUnavailable
    }

    /// The wait limit in force: ``maxWait`` or 2 × ``lockTTL``.
    public var effectiveMaxWait: Duration { maxWait ?? lockTTL * 2 }

    /// Checks every setting; throws ``CacheConfigurationError`` naming the value to change.
    public func validate() throws(CacheConfigurationError) {
        func positive(_ value: Duration, _ name: String) throws(CacheConfigurationError) {
            if value <= .zero { throw CacheConfigurationError(setting: name, problem: "must be positive, got \(value)") }
        }
        try positive(freshFor, "freshFor")
        if staleFor < .zero { throw CacheConfigurationError(setting: "staleFor", problem: "must be zero or positive, got \(staleFor)") }
        try positive(computeTimeout, "computeTimeout")
        try positive(lockTTL, "lockTTL")
        try positive(hot.window, "hot.window")
        try positive(followerRecheckInterval, "followerRecheckInterval")
        try positive(fenceRetention, "fenceRetention")
        if let maxWait { try positive(maxWait, "maxWait") }
        if hot.ttl < .zero { throw CacheConfigurationError(setting: "hot.ttl", problem: "must be zero (never slide) or positive, got \(hot.ttl)") }
        if failSafeThrottle < .zero { throw CacheConfigurationError(setting: "failSafeThrottle", problem: "must be zero or positive") }
        if lockTTL < computeTimeout + minimumLockMargin {
            throw CacheConfigurationError(
                setting: "lockTTL",
                problem: "is \(lockTTL) but must exceed computeTimeout (\(computeTimeout)) by at least \(minimumLockMargin); raise lockTTL to \(computeTimeout + minimumLockMargin) or more, or lower computeTimeout"
            )
        }
        if !(0...0.5).contains(ttlJitter) || ttlJitter.isNaN {
            throw CacheConfigurationError(setting: "ttlJitter", problem: "must be in [0, 0.5], got \(ttlJitter)")
        }
        if !(0...10).contains(followerRetries) {
            throw CacheConfigurationError(setting: "followerRetries", problem: "must be between 0 and 10, got \(followerRetries)")
        }
        if hot.threshold < 1 { throw CacheConfigurationError(setting: "hot.threshold", problem: "must be at least 1, got \(hot.threshold)") }
        if !(earlyRefreshBeta >= 0) || earlyRefreshBeta.isInfinite {
            throw CacheConfigurationError(setting: "earlyRefreshBeta", problem: "must be a finite number >= 0 (0 = off), got \(earlyRefreshBeta)")
        }
        if maxValueBytes < 1 || maxValueBytes > 512 << 20 {
            throw CacheConfigurationError(setting: "maxValueBytes", problem: "must be between 1 byte and 512 MiB (Redis's limit), got \(maxValueBytes)")
        }
        if case .failOpen(let bound) = redisUnavailable, bound < 1 {
            throw CacheConfigurationError(setting: "redisUnavailable", problem: "failOpen needs maxConcurrentComputations >= 1, got \(bound)")
        }
        for (name, value) in [("freshFor", freshFor), ("staleFor", staleFor), ("lockTTL", lockTTL), ("hot.window", hot.window), ("hot.ttl", hot.ttl)]
        where value > .seconds(10 * 365 * 86_400) {
            throw CacheConfigurationError(setting: name, problem: "is longer than 10 years (\(value)); that is almost certainly a unit mistake")
        }
    }
}

/// A policy setting that cannot work, and what to change.
public struct CacheConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The setting's name, e.g. `lockTTL`.
    public var setting: String
    /// What is wrong and what to do.
    public var problem: String

    /// Creates the error.
    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }

    /// `Invalid cache policy: <setting> <problem>`.
    public var description: String { "Invalid cache policy: \(setting) \(problem)" }
}

