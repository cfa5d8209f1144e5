/// The faults the chaos suite can inject, one per scenario.
package enum ChaosScenario: String, CaseIterable, Sendable, Codable {
    /// No fault: the reference run (0 extra upstream calls allowed).
    case baseline
    /// `SCRIPT FLUSH` twice under load: every script must be reloaded (NOSCRIPT).
    case scriptFlush = "script-flush"
    /// `CLIENT KILL TYPE normal` and `TYPE pubsub` twice under load.
    case clientKill = "client-kill"
    /// `SHUTDOWN NOSAVE` and start again on the same address: data and scripts are gone.
    case redisRestart = "redis-restart"
    /// `CLIENT PAUSE` longer than the command timeout: commands time out, the fleet fails open.
    case redisStall = "redis-stall"
    /// A 2 MB `maxmemory` with `allkeys-lru`: entries, locks and fence counters get evicted.
    case memoryPressure = "memory-pressure"
    /// A burst of upstream 500s (half of all calls fail for a while).
    case upstreamErrors = "upstream-errors"
    /// Upstream calls that hang past the compute timeout.
    case upstreamHangs = "upstream-hangs"
    /// The subscriber connections are killed again and again while followers wait: notices get lost.
    case lostNotices = "lost-notices"
    /// A worker process holding a lock is killed with SIGKILL mid-computation (workers are OS processes).
    case workerKilled = "worker-killed"
    /// A worker process holding a lock is frozen (SIGSTOP) past its lock TTL, then resumed: the zombie writer.
    case leaderFrozen = "leader-frozen"
    /// On a 3-primary, 3-replica cluster: `CLUSTER FAILOVER` promotes a primary's replica mid-run (MOVED after).
    case clusterFailover = "cluster-failover"
    /// On a 3-primary cluster: the slots of the keys written so far on one primary migrate to another
    /// mid-run, key by key (ASK while a slot migrates, MOVED after).
    case clusterReshard = "cluster-reshard"
    /// Through Sentinel (primary, replica, three sentinels): `SENTINEL FAILOVER` mid-run.
    case sentinelFailover = "sentinel-failover"
    /// Every worker with the near-cache on: its invalidation listeners are killed again and again
    /// while popular prompts are invalidated; no worker may answer from memory what was deleted.
    case lostInvalidations = "lost-invalidations"

    /// Whether the scenario flushes, kills, pauses or restarts (needs `--allow-destructive`).
    package var isDestructive: Bool {
        switch self {
        case .baseline, .upstreamErrors, .upstreamHangs: return false
        default: return true
        }
    }

    /// Whether the scenario needs a redis-server the suite started (it restarts it or sets its memory).
    package var needsOwnServer: Bool { self == .redisRestart || self == .memoryPressure || needsOwnCluster || self == .sentinelFailover }

    /// Whether the scenario runs on a loopback Redis Cluster the suite starts itself.
    package var needsOwnCluster: Bool { self == .clusterFailover || self == .clusterReshard }

    /// Whether the workers run as separate `stampede chaos-worker` processes.
    package var isMultiProcess: Bool { self == .workerKilled || self == .leaderFrozen }

    /// One line on what the scenario does.
    package var summary: String {
        switch self {
        case .baseline: return "no fault"
        case .scriptFlush: return "SCRIPT FLUSH at 30% and 60% of the run"
        case .clientKill: return "CLIENT KILL TYPE normal + pubsub at 30% and 60%"
        case .redisRestart: return "SHUTDOWN NOSAVE + restart on the same address at 40%"
        case .redisStall: return "CLIENT PAUSE 1.5 s (3x the command timeout) at 30%"
        case .memoryPressure: return "maxmemory 2mb allkeys-lru over 1,500 keys"
        case .upstreamErrors: return "upstream error rate 50% from 30% to 60%"
        case .upstreamHangs: return "30% of upstream calls hang from 30% to 60%"
        case .lostNotices: return "CLIENT KILL TYPE pubsub every 150 ms from 30% to 60%"
        case .workerKilled: return "SIGKILL a worker process while its upstream call is in flight"
        case .leaderFrozen: return "SIGSTOP a computing worker process for lockTTL + 0.5 s, then SIGCONT"
        case .clusterFailover: return "3+3 node cluster: CLUSTER FAILOVER of a primary at 40%"
        case .clusterReshard: return "3-primary cluster: the slots of up to 32 keys migrate to another primary at 30% (ASK, then MOVED)"
        case .sentinelFailover: return "primary + replica + 3 sentinels: SENTINEL FAILOVER at 40%"
        case .lostInvalidations: return "near-cache on: CLIENT KILL TYPE pubsub every 150 ms from 30% to 60% while a popular prompt is invalidated every 40 ms"
        }
    }
}

/// The size and shape of a chaos run.
package struct ChaosOptions: Sendable {
    /// Worker instances (each with its own Redis connections and LLMCache).
    package var workers = 4
    /// Concurrent callers per worker.
    package var callers = 8
    /// Distinct prompts.
    package var keys = 60
    /// Zipf exponent of prompt popularity.
    package var zipf = 1.1
    /// How long each scenario's load runs.
    package var duration: Duration = .seconds(3)
    /// Seed of the workload and of the simulated upstream.
    package var seed: UInt64 = 7
    /// A Redis to run against instead of a private one (only non-destructive scenarios, unless allowed).
    package var redisURL: String?
    /// Allow scenarios that flush, kill, pause or restart Redis, or kill worker processes.
    package var allowDestructive = false
    /// The `stampede` executable, for the scenarios whose workers are OS processes.
    package var workerExecutable: String?
    /// Run every scenario's workers as separate OS processes (`stampede chaos-worker`) instead of
    /// tasks of this process. `worker-killed` and `leader-frozen` always use processes.
    package var processes = false
    /// Every worker runs with the near-cache on (``NearCacheConfiguration`` defaults);
    /// `lost-invalidations` always does.
    package var nearCache = false
    /// Every worker commits in the background (``CachePolicy/commitInBackground``): its callers are
    /// answered before the commit lands.
    package var commitInBackground = false
    /// Breaks the cache on purpose, to prove the judge can fail (tests only; `stampede chaos` never sets it).
    package var mutation: ChaosMutation?

    /// The bounded size CI runs (about 5 s a scenario).
    package static var smoke: ChaosOptions { ChaosOptions() }

    /// Creates options with the smoke defaults.
    package init() {}
}

/// A deliberate defect injected into a run, so a test can prove the invariants catch it.
package enum ChaosMutation: Sendable, Equatable {
    /// Every entry stays servable an hour past its fresh + stale window, and its refresh is blocked
    /// (its lock is held): the fleet serves answers older than the policy allows, as a cache that
    /// ignored stale-until would. `no_value_beyond_stale_until` must fail.
    case servePastStaleUntil
    /// The workers' near-caches ignore Redis's invalidations and every loss of coherence, as a
    /// near-cache kept by a lossy home-made bus would: `no_answer_from_before_its_invalidation` must fail.
    case nearCacheIgnoresInvalidations
}
