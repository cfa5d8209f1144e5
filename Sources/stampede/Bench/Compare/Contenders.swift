import Foundation
import Logging
import NIOCore
import RedisClient
import StampedeCache

/// The implementations a comparison runs side by side on the same workload.
///
/// Only ``stampedeCache`` is the product. The two baselines exist in this benchmark only, written
/// the way they usually appear in tutorials and blog posts, flaws included.
enum Implementation: String, CaseIterable, Sendable {
    /// StampedeCache: fenced lock, atomic get-or-lock, notices, serve-stale-then-refresh.
    case stampedeCache = "stampede_cache"
    /// StampedeCache with its near-cache on (fresh hits from process memory, kept coherent by Redis).
    case stampedeCacheNear = "stampede_cache_l1"
    /// Baseline: GET; on a miss call the upstream and PSETEX. No lock.
    case cacheAside = "cache_aside"
    /// Baseline: GET; on a miss `SET lock NX EX 10`; the winner computes, PSETEX, DEL lock (without
    /// checking it still owns it); the others sleep 100 ms and start over.
    case setNXLock = "set_nx_lock"

    /// The label in tables and charts.
    var label: String {
        switch self {
        case .stampedeCache: return "StampedeCache"
        case .stampedeCacheNear: return "StampedeCache + near-cache"
        case .cacheAside: return "cache-aside (baseline)"
        case .setNXLock: return "SET NX + sleep (baseline)"
        }
    }
}

/// What one request of a comparison got back.
struct Fetched: Sendable {
    var bytes: Int
    /// The value served was past its freshness (only StampedeCache serves stale values).
    var stale: Bool
}

/// One worker's instance of an implementation: its own Redis connection and, for StampedeCache,
/// its own cache (as separate processes would have).
protocol Contender: Sendable {
    func fetch(_ key: String, upstream: BenchUpstream) async throws -> Fetched
    func close() async
}

/// The settings a workload gives every implementation.
struct ContenderSettings: Sendable {
    /// How long a value is fresh (the baselines' PSETEX TTL).
    var ttl: Duration
    /// How long StampedeCache may serve a value past `ttl` while one worker refreshes it.
    var staleFor: Duration
    /// StampedeCache's compute timeout (its lock TTL is this plus the policy's minimum margin).
    var computeTimeout: Duration
    /// The baseline lock's fixed TTL ("EX 10" in the tutorials; scaled with `--time-scale`).
    var baselineLockTTL: Duration
    /// How long the baseline lock's losers sleep before they start over.
    var baselineRetrySleep: Duration = .milliseconds(100)
    /// StampedeCache's ``CachePolicy/followerRetries``.
    var followerRetries = 0

    var stampedePolicy: CachePolicy {
        let margin = max(.seconds(1), computeTimeout / 10)
        return CachePolicy(
            freshFor: ttl, staleFor: staleFor, computeTimeout: computeTimeout, lockTTL: computeTimeout + margin,
            hot: .init(threshold: 1_000_000, window: .seconds(60), ttl: .zero), ttlJitter: 0,
            failSafeThrottle: .milliseconds(200), followerRecheckInterval: .milliseconds(250), followerRetries: followerRetries
        )
    }
}

struct StampedeContender: Contender {
    let client: RedisClient
    let cache: StampedeCache
    /// The cache runs as a service would (hot-key counts flushed, generation refreshed).
    let running: BackgroundRun

    static func make(url: String, namespace: String, settings: ContenderSettings, nearCache: Bool = false, logger: Logger) async throws -> StampedeContender {
        let client = try RedisClient(configuration: try BenchConnections.configuration(url), logger: logger)
        let cache = try StampedeCache(
            redis: client, namespace: namespace, policy: settings.stampedePolicy, logger: logger, nearCache: nearCache ? NearCacheConfiguration() : nil
        )
        await cache.start()
        return StampedeContender(client: client, cache: cache, running: BackgroundRun(cache.run))
    }

    func fetch(_ key: String, upstream: BenchUpstream) async throws -> Fetched {
        // Like the cache-aside baseline's GET, the bytes Redis sent, without copying them.
        let result = try await cache.buffer(for: key) { ByteBuffer(bytes: try await upstream.call(key)) }
        let stale: Bool
        switch result.source {
        case .staleHit, .staleAfterFailure: stale = true
        default: stale = false
        }
        return Fetched(bytes: result.value.readableBytes, stale: stale)
    }

    func close() async {
        await cache.close()
        await running.finished()
        await client.close()
    }
}

struct CacheAsideContender: Contender {
    let client: RedisClient
    let prefix: String
    let ttl: Duration

    func fetch(_ key: String, upstream: BenchUpstream) async throws -> Fetched {
        let redisKey = prefix + key
        if let cached = try await client.get(redisKey) { return Fetched(bytes: cached.readableBytes, stale: false) }
        let value = try await upstream.call(key)
        try await client.store(value, at: redisKey, for: ttl)
        return Fetched(bytes: value.count, stale: false)
    }

    func close() async { await client.close() }
}

/// The tutorial lock, as written: no owner token, fixed TTL, DEL on the way out, poll every 100 ms.
struct SetNXLockContender: Contender {
    let client: RedisClient
    let prefix: String
    let settings: ContenderSettings

    func fetch(_ key: String, upstream: BenchUpstream) async throws -> Fetched {
        let redisKey = prefix + key
        let lockKey = prefix + "lock:" + key
        while true {
            if let cached = try await client.get(redisKey) { return Fetched(bytes: cached.readableBytes, stale: false) }
            let acquired = try await client.send("SET", RedisArgument(lockKey), "1", "NX", "PX", RedisArgument(settings.baselineLockTTL.wholeMilliseconds))
            if acquired.string == "OK" {
                do {
                    let value = try await upstream.call(key)
                    try await client.store(value, at: redisKey, for: settings.ttl)
                    _ = try await client.delete([lockKey])  // the flaw: may delete another worker's lock
                    return Fetched(bytes: value.count, stale: false)
                } catch {
                    _ = try? await client.delete([lockKey])
                    throw error
                }
            }
            try await Task.sleep(for: settings.baselineRetrySleep)
        }
    }

    func close() async { await client.close() }
}

extension RedisClient {
    /// `PSETEX key ttl value`: how both baselines store what they computed.
    fileprivate func store(_ value: [UInt8], at key: String, for ttl: Duration) async throws {
        try await send("PSETEX", RedisArgument(key), RedisArgument(ttl.wholeMilliseconds), RedisArgument(bytes: value))
    }
}

enum BenchConnections {
    /// One connection per worker, generous timeouts (the benchmark measures the caches, not failures).
    static func configuration(_ url: String) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = 1
        configuration.commandTimeout = .seconds(10)
        return configuration
    }

    static func make(_ implementation: Implementation, url: String, runID: String, settings: ContenderSettings, logger: Logger) async throws -> any Contender {
        switch implementation {
        case .stampedeCache:
            return try await StampedeContender.make(url: url, namespace: "cmp\(runID)", settings: settings, logger: logger)
        case .stampedeCacheNear:
            return try await StampedeContender.make(url: url, namespace: "cmpl1\(runID)", settings: settings, nearCache: true, logger: logger)
        case .cacheAside:
            return CacheAsideContender(client: try RedisClient(configuration: configuration(url), logger: logger), prefix: "bench:aside:\(runID):", ttl: settings.ttl)
        case .setNXLock:
            return SetNXLockContender(client: try RedisClient(configuration: configuration(url), logger: logger), prefix: "bench:nx:\(runID):", settings: settings)
        }
    }
}
