import Foundation
import Logging
import RedisClient
import RedisTestSupport
import StampedeCache
import Synchronization
import Testing

/// Counts calls to a compute closure across every worker of a test (the "upstream").
final class Upstream: Sendable {
    private let calls = Atomic<Int>(0)
    var count: Int { calls.load(ordering: .relaxed) }

    /// A compute closure that records the call, waits `latency`, and returns `value`.
    func compute(_ value: String, latency: Duration = .zero) -> @Sendable () async throws -> [UInt8] {
        { [self] in
            calls.add(1, ordering: .relaxed)
            if latency > .zero { try await Task.sleep(for: latency) }
            return Array(value.utf8)
        }
    }

    /// A compute closure that records the call and throws.
    func failing(after latency: Duration = .zero) -> @Sendable () async throws -> [UInt8] {
        { [self] in
            calls.add(1, ordering: .relaxed)
            if latency > .zero { try await Task.sleep(for: latency) }
            throw UpstreamDown()
        }
    }
}

struct UpstreamDown: Error, Equatable {}

/// A worker: its own RedisClient (its own connections, like a separate process) and cache, the
/// cache started (scripts loaded, notice channel subscribed) and running as a service.
struct Worker {
    let client: RedisClient
    let cache: StampedeCache
    /// The cache's `run()`, unless the worker was started without its background loop.
    let running: BackgroundRun?

    /// - Parameter backgroundLoop: run the cache's `run()` (hit flushes, generation re-reads). Tests
    ///   that count every command a call sends start without it: the cache then re-reads its
    ///   generation itself, inside the calls that need it, where ``CacheDiagnostics/generationReads`` counts it.
    static func start(
        _ url: String, namespace: String, policy: CachePolicy, backgroundLoop: Bool = true, nearCache: NearCacheConfiguration? = nil
    ) async throws -> Worker {
        let client = try makeClient(url, poolSize: 1)
        let cache = try StampedeCache(redis: client, namespace: namespace, policy: policy, logger: TestRedis.logger, nearCache: nearCache)
        await cache.start()
        return Worker(client: client, cache: cache, running: backgroundLoop ? BackgroundRun(cache.run) : nil)
    }

    static func fleet(_ count: Int, url: String, namespace: String, policy: CachePolicy) async throws -> [Worker] {
        var workers: [Worker] = []
        for _ in 0..<count { workers.append(try await start(url, namespace: namespace, policy: policy)) }
        return workers
    }

    func stop() async {
        await cache.close()
        await running?.finished()
        await client.close()
    }
}

func uniqueNamespace(_ name: String = #function) -> String {
    "t\(UInt32.random(in: 0..<UInt32.max))"
}

/// A fast policy for tests: short windows, validated like any other.
func testPolicy(
    freshFor: Duration = .seconds(60),
    staleFor: Duration = .seconds(60),
    computeTimeout: Duration = .seconds(2),
    lockTTL: Duration = .seconds(3),
    hot: CachePolicy.HotKeys = .init(threshold: 1_000_000, window: .seconds(60), ttl: .seconds(60)),
    ttlJitter: Double = 0,
    recheck: Duration = .seconds(10),
    failSafeThrottle: Duration = .zero,
    followerRetries: Int = CachePolicy().followerRetries
) -> CachePolicy {
    CachePolicy(
        freshFor: freshFor, staleFor: staleFor, computeTimeout: computeTimeout, lockTTL: lockTTL, hot: hot,
        ttlJitter: ttlJitter, failSafeThrottle: failSafeThrottle, followerRecheckInterval: recheck,
        followerRetries: followerRetries
    )
}

/// Waits (polling every 5 ms, at most `limit`) until `condition` holds; records an issue if it never does.
func eventually(_ what: String, limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("never happened: \(what)")
}

/// The Redis server's clock in epoch milliseconds (`TIME`), the clock every cache decision uses.
func serverMillis(_ client: RedisClient) async throws -> Int64 {
    let time = try await client.send("TIME").array ?? []
    return (time.first?.int ?? 0) * 1_000 + (time.last?.int ?? 0) / 1_000
}

/// Waits (on the server's clock, not a sleep of fixed length) until it is past `instant` (epoch ms).
func waitUntilServerClockPasses(_ instant: Int64, _ client: RedisClient, _ what: String) async throws {
    try await eventually(what) { try await serverMillis(client) > instant }
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// `INFO commandstats` calls of one command on a server only this test uses.
func commandCalls(_ client: RedisClient, _ command: String) async throws -> Int {
    let info = try await client.send("INFO", "commandstats").string ?? ""
    for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_\(command):") {
        if let calls = line.split(separator: ",").first?.split(separator: "=").last, let value = Int(calls) { return value }
    }
    return 0
}
