import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
@testable import StampedeCache
import Synchronization
import Testing

@Suite("StampedeCache: one slow command does not fail the others open")
struct BlastRadiusTests {
    @Test("Redis paused past the command timeout: the 5 reads in flight are retried once on a fresh connection and served from the cache, none computed uncached")
    func timedOutReadsAreRetried() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url, commandTimeout: .seconds(1))
            let cache = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
            await cache.start()
            let upstream = Upstream()
            for index in 0..<5 { _ = try await cache.value(for: "k\(index)", compute: upstream.compute("v\(index)")) }
            let admin = try makeClient(server.url)
            // Every read sent now waits out the pause: the first attempts time out after 1 s (and
            // the connection they share is discarded); the retries, on a new connection, are
            // answered when the pause ends at 1.5 s, well within their own 1 s.
            try await admin.send("CLIENT", "PAUSE", "1500", "ALL")
            let results = try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
                for index in 0..<5 { group.addTask { try await cache.value(for: "k\(index)", compute: upstream.compute("again")) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.map(\.source) == Array(repeating: .freshHit, count: 5), "\(results.compactMap(\.notCachedBecause)) retries=\(cache.diagnostics.redisRetries)")
            #expect(upstream.count == 5, "only the 5 initial computations")
            #expect(cache.diagnostics.redisRetries >= 1)
            await cache.close()
            await admin.close()
            await client.close()
        }
    }
}
