import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
@testable import StampedeCache
import Synchronization
import Testing

@Suite("StampedeCache: the generation without a running loop", .sharedRedis)
struct GenerationWithoutRunTests {
    @Test("a cache that was started but is not running re-reads the namespace generation itself once it is over a second old")
    func startedButNotRunningRefreshesInline() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let cache = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
        await cache.start()
        let before = try await cache.entryKeys(for: "k")
        // Bump the generation behind the cache's back (no notice), then wait past the 1 s refresh age.
        _ = try await client.send("INCR", RedisArgument(cache.keySpace.generationKey))
        try await Task.sleep(for: .milliseconds(1_100))
        _ = try await cache.entryKeys(for: "k")  // the caller that finds it stale re-reads it
        let after = try await cache.entryKeys(for: "k")
        #expect(before.id.hasPrefix("\(cache.namespace):0:"))
        #expect(after.id.hasPrefix("\(cache.namespace):1:"))
        await cache.close()
        await client.close()
    }
}
