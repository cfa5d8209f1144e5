/// Where a returned value came from.
public enum CacheSource: Sendable, Hashable, CustomStringConvertible {
    /// What happens to a stale value's refresh.
    public enum Refresh: Sendable, Hashable {
        /// This call won the refresh lease; this worker refreshes in the background.
        case startedHere
        /// Another worker, or another call in this process that this call joined, holds the lease
        /// (refreshing, or throttled after a failure).
        case runningElsewhere
    }

    /// A fresh value from Redis (one round trip).
    case freshHit
    /// A fresh value from this process's near-cache (``NearCacheConfiguration``): no round trip.
    case freshHitNear
    /// A fresh value whose early (XFetch) refresh this call just started in the background (calls
    /// that joined it in this process see ``freshHit``).
    case freshHitEarlyRefresh
    /// A value past its freshness but within its stale window, returned at once while one worker refreshes it.
    case staleHit(Refresh)
    /// Computed by this process (it held the lock) and committed.
    case computed
    /// Computed by another worker while this one waited for it.
    case receivedFromOtherWorker
    /// The computation failed (here or elsewhere) and a stale value was served instead (fail-safe).
    case staleAfterFailure(reason: String)
    /// Redis was unreachable; computed directly without caching (fail-open).
    case uncachedRedisUnavailable
    /// Computed by this call and not stored: a ``CacheRequestOptions/noStore`` call (no lock taken),
    /// or a computation that returned ``Computed/deliverWithoutStoring(_:reason:)``.
    case computedNotStored
    /// Computed by a concurrent call for the same key in this process, which this call joined: this
    /// call made no computation and no script call of its own, at most the read that found no
    /// fresh value before it joined (``CacheResult/coalesced`` is `true`).
    case joinedInProcess

    /// A short, stable label (also used as a metrics dimension).
    public var label: String {
        switch self {
        case .freshHit: return "fresh_hit"
        case .freshHitNear: return "fresh_hit_near"
        case .freshHitEarlyRefresh: return "fresh_hit_early_refresh"
        case .staleHit(.startedHere): return "stale_hit_refreshing_here"
        case .staleHit(.runningElsewhere): return "stale_hit_refreshing_elsewhere"
        case .computed: return "computed"
        case .receivedFromOtherWorker: return "received_from_other_worker"
        case .staleAfterFailure: return "stale_after_failure"
        case .uncachedRedisUnavailable: return "uncached_redis_unavailable"
        case .computedNotStored: return "computed_not_stored"
        case .joinedInProcess: return "joined_in_process"
        }
    }

    /// Whether the value was served from the cache (any hit, fresh or stale).
    public var isHit: Bool {
        switch self {
        case .freshHit, .freshHitNear, .freshHitEarlyRefresh, .staleHit, .staleAfterFailure: return true
        default: return false
        }
    }

    /// Same as ``label``.
    public var description: String { label }
}

/// A value with where it came from and how old it is.
public struct CacheResult<Value: Sendable>: Sendable {
    /// The value.
    public var value: Value
    /// Where it came from.
    public var source: CacheSource
    /// How long ago it was computed, by the Redis server's clock (zero if computed for this call).
    public var age: Duration
    /// When it stops being fresh, in milliseconds since the epoch by the Redis server's clock
    /// (`nil` when it was not stored).
    public var freshUntilMillis: Int64?
    /// How much longer the value stays fresh, by the Redis server's clock when it was read (or
    /// stored, for a value computed by this call); `.zero` for a stale value, `nil` when it is not
    /// stored. HTTP's `min-fresh` compares against it.
    public var remainingFreshness: Duration?
    /// `true` when this call joined a concurrent call for the same key in this process and shares
    /// its outcome: no computation or script call was made for it. A joined hit keeps the hit's
    /// ``source``; a joined computation has ``CacheSource/joinedInProcess``. A fresh hit is read
    /// without joining anything (concurrent fresh reads share a batched read instead), so it is
    /// `false` for it.
    public var coalesced: Bool
    /// Why the value is not in the cache although it was computed for this call (or for the call it
    /// received it from): `noStore`, the computation's ``Computed/deliverWithoutStoring(_:reason:)``
    /// reason, a commit Redis refused (its message verbatim), a newer value already stored, or Redis
    /// unavailable. `nil` when the value is stored (or was served from the cache).
    public var notCachedBecause: String?

    /// Whether this call's own task ran the computation (and so paid for it).
    public var computedHere: Bool {
        switch source {
        case .computed, .computedNotStored, .uncachedRedisUnavailable: return true
        default: return false
        }
    }

    /// Creates a result.
    public init(value: Value, source: CacheSource, age: Duration, freshUntilMillis: Int64?, coalesced: Bool = false, notCachedBecause: String? = nil) {
        self.value = value
        self.source = source
        self.age = age
        self.freshUntilMillis = freshUntilMillis
        self.coalesced = coalesced
        self.notCachedBecause = notCachedBecause
    }

    /// The same result with a transformed value.
    public func map<T: Sendable>(_ transform: (Value) throws -> T) rethrows -> CacheResult<T> {
        var result = CacheResult<T>(value: try transform(value), source: source, age: age, freshUntilMillis: freshUntilMillis, coalesced: coalesced, notCachedBecause: notCachedBecause)
        result.remainingFreshness = remainingFreshness
        return result
    }
}

/// Per-call controls.
public struct CacheRequestOptions: Sendable, Hashable {
    /// The most staleness this caller accepts. `nil` (default): any value within the stale window is
    /// served at once while it is refreshed. `.zero`: only fresh values; a stale one is refreshed
    /// first and served only if the refresh fails (fail-safe).
    public var maxStale: Duration?
    /// Overrides ``CachePolicy/freshFor`` for a value this call computes.
    public var freshFor: Duration?
    /// Tags to attach to a value this call computes, for ``StampedeCache/invalidate(tag:)``.
    public var tags: [String]
    /// Don't serve the stored value: recompute it under the lock and store the result ("no-cache").
    /// Concurrent forced callers still share one computation.
    public var forceRefresh: Bool
    /// Don't store what this call computes ("no-store"). A fresh stored value is still served;
    /// otherwise the value is computed directly, without taking the lock, so nobody waits for a
    /// result that will not be stored.
    public var noStore: Bool
    /// The most staleness this caller accepts in a value served because the refresh failed or took
    /// too long (HTTP's `stale-if-error`). `nil` (default): anything within the stale window.
    /// `.zero`: never serve a stale value on failure; the failure reaches the caller.
    public var staleIfError: Duration?

    /// Checks the per-call settings (a value computed with an unusable freshness would never be
    /// stored, and its lock would be held until it expired).
    /// - Throws: ``CacheError/Code/invalidOption`` naming the option.
    public func validate() throws(CacheError) {
        let tenYears = Duration.seconds(10 * 365 * 86_400)
        if let freshFor {
            guard freshFor >= .milliseconds(1) else { throw CacheError.invalidOption("freshFor", problem: "must be at least 1 ms, got \(freshFor)") }
            guard freshFor <= tenYears else { throw CacheError.invalidOption("freshFor", problem: "is longer than 10 years (\(freshFor)); that is almost certainly a unit mistake") }
        }
        if let maxStale, maxStale < .zero {
            throw CacheError.invalidOption("maxStale", problem: "must be zero or positive, got \(maxStale)")
        }
        if let staleIfError, staleIfError < .zero {
            throw CacheError.invalidOption("staleIfError", problem: "must be zero or positive, got \(staleIfError)")
        }
    }

    /// Creates options; the defaults change nothing.
    public init(
        maxStale: Duration? = nil, freshFor: Duration? = nil, tags: [String] = [], forceRefresh: Bool = false, noStore: Bool = false,
        staleIfError: Duration? = nil
    ) {
        self.maxStale = maxStale
        self.staleIfError = staleIfError
        self.freshFor = freshFor
        self.tags = tags
        self.forceRefresh = forceRefresh
        self.noStore = noStore
    }
}
