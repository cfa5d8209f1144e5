import CoreMetrics
import Synchronization

/// swift-metrics instruments of one cache (all carry the `namespace` dimension):
/// `stampede_cache_requests_total{source}`, `stampede_cache_computations_total{result}`,
/// `stampede_cache_compute_seconds`, `stampede_cache_follower_wait_seconds`,
/// `stampede_cache_follower_wakeups_total{via}`, `stampede_cache_lock_takeovers_total`,
/// `stampede_cache_commits_rejected_total{reason}`, `stampede_cache_corrupt_entries_total`,
/// `stampede_cache_coalesced_total`, `stampede_cache_redis_unavailable_total`,
/// `stampede_cache_commit_failures_total` (computed values Redis refused to store: returned, handed
/// to the waiting followers, not cached).
/// NOSCRIPT reloads are counted by the client as `redis_noscript_reloads_total`.
extension CacheSource {
    /// The position of ``label`` in ``CacheMetrics/sourceLabels``.
    var metricIndex: Int {
        switch self {
        case .freshHit: return 0
        case .freshHitEarlyRefresh: return 1
        case .staleHit(.startedHere): return 2
        case .staleHit(.runningElsewhere): return 3
        case .computed: return 4
        case .receivedFromOtherWorker: return 5
        case .staleAfterFailure: return 6
        case .uncachedRedisUnavailable: return 7
        case .computedNotStored: return 8
        case .joinedInProcess: return 9
        case .freshHitNear: return 10
        }
    }
}

struct CacheMetrics: Sendable {
    let namespace: String
    let computeTime: Timer
    let waitTime: Timer
    let takeovers: Counter
    let corrupt: Counter
    let coalesced: Counter
    let redisUnavailable: Counter
    let commitFailures: Counter
    let redisRetries: Counter
    /// Fresh reads that left inside an `MGET` batch, and the batches (``ReadBatcher``).
    let batchedReads: Counter
    let readBatches: Counter
    /// Lookups sent straight to `get_or_lock` (most recent lookups found nothing fresh: ``LookupHistory``).
    let scriptFirstLookups: Counter
    /// Values answered before their background commit landed, right now (``PendingCommits``).
    /// (A meter, counted up and down: caches that share a metrics label add up.)
    let pendingCommits: Meter
    private let requestCounters: [Counter]
    private let wakeups: [String: Counter]

    static let sourceLabels = [
        "fresh_hit", "fresh_hit_early_refresh", "stale_hit_refreshing_here", "stale_hit_refreshing_elsewhere",
        "computed", "received_from_other_worker", "stale_after_failure", "uncached_redis_unavailable", "computed_not_stored",
        "joined_in_process", "fresh_hit_near",
    ]

    init(namespace: String) {
        requestCounters = Self.sourceLabels.map {
            Counter(label: "stampede_cache_requests_total", dimensions: [("namespace", namespace), ("source", $0)])
        }
        wakeups = Dictionary(uniqueKeysWithValues: ["notice", "recheck", "reconnect"].map {
            ($0, Counter(label: "stampede_cache_follower_wakeups_total", dimensions: [("namespace", namespace), ("via", $0)]))
        })
        self.namespace = namespace
        let dimensions = [("namespace", namespace)]
        computeTime = Timer(label: "stampede_cache_compute_seconds", dimensions: dimensions)
        waitTime = Timer(label: "stampede_cache_follower_wait_seconds", dimensions: dimensions)
        takeovers = Counter(label: "stampede_cache_lock_takeovers_total", dimensions: dimensions)
        corrupt = Counter(label: "stampede_cache_corrupt_entries_total", dimensions: dimensions)
        coalesced = Counter(label: "stampede_cache_coalesced_total", dimensions: dimensions)
        redisUnavailable = Counter(label: "stampede_cache_redis_unavailable_total", dimensions: dimensions)
        commitFailures = Counter(label: "stampede_cache_commit_failures_total", dimensions: dimensions)
        redisRetries = Counter(label: "stampede_cache_redis_retries_total", dimensions: dimensions)
        batchedReads = Counter(label: "stampede_cache_batched_reads_total", dimensions: dimensions)
        readBatches = Counter(label: "stampede_cache_read_batches_total", dimensions: dimensions)
        scriptFirstLookups = Counter(label: "stampede_cache_script_first_lookups_total", dimensions: dimensions)
        pendingCommits = Meter(label: "stampede_cache_pending_commits", dimensions: dimensions)
    }

    func request(_ source: CacheSource) {
        requestCounters[source.metricIndex].increment()
    }

    func computation(_ result: String) {
        Counter(label: "stampede_cache_computations_total", dimensions: [("namespace", namespace), ("result", result)]).increment()
    }

    func wakeup(_ via: String) {
        wakeups[via]?.increment()
    }

    func rejectedCommit(_ reason: String) {
        Counter(label: "stampede_cache_commits_rejected_total", dimensions: [("namespace", namespace), ("reason", reason)]).increment()
    }
}

/// Exact in-process counters, for tests, benchmarks and the CLI (`StampedeCache.diagnostics`).
public struct CacheDiagnostics: Sendable, Hashable {
    /// Computations started by this cache instance (leader or refresh).
    public var computations = 0
    /// Computations that threw or timed out.
    public var failedComputations = 0
    /// Times a follower started waiting for another worker's computation (one per wait).
    public var followerWaits = 0
    /// Followers woken by a completion/failure notice (the primary path).
    public var wakeupsByNotice = 0
    /// Followers woken by the fallback re-check timer.
    public var wakeupsByRecheck = 0
    /// Followers woken because the subscriber reconnected.
    public var wakeupsByReconnect = 0
    /// Followers that went back to get-or-lock after the computation they awaited failed (``CachePolicy/followerRetries``).
    public var followerRetries = 0
    /// Times this instance took over a lock after the holder's expired.
    public var lockTakeovers = 0
    /// Commits rejected by fencing.
    public var rejectedCommits = 0
    /// Calls that joined another in-process call for the same key.
    public var coalesced = 0
    /// Entries found corrupt or foreign and treated as misses.
    public var corruptEntries = 0
    /// Background refreshes started.
    public var refreshesStarted = 0
    /// Commits that Redis refused with an error (the value was returned and handed off, not cached).
    public var failedCommits = 0
    /// Reads retried once on a fresh connection after a timeout or a dropped connection (instead of failing open at once).
    public var redisRetries = 0
    /// Reads of the namespace generation (`GET`), by the background loop or, without one, on use.
    public var generationReads = 0
    /// Times the background loop subscribed the notice channel because the start could not.
    public var channelResubscribes = 0
    /// Computed values handed to waiting followers without being stored.
    public var handoffsGiven = 0
    /// Values this instance's followers received from another worker's hand-off (not stored).
    public var handoffsReceived = 0
    /// Lookups that went straight to `get_or_lock` without reading the entry first, because fewer
    /// than half of the cache's last 16 lookups found a fresh entry (one round trip per miss
    /// instead of two).
    public var scriptFirstLookups = 0
}

final class DiagnosticsBox: Sendable {
    private let value = Mutex(CacheDiagnostics())
    func update(_ body: (inout CacheDiagnostics) -> Void) { value.withLock { body(&$0) } }
    var snapshot: CacheDiagnostics { value.withLock { $0 } }
}
