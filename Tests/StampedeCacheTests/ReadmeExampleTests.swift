import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
import StampedeCache
import Testing

/// Stands in for an expensive call (an LLM, a slow service).
private func summarize(articleID: Int) async throws -> String {
    try await Task.sleep(for: .milliseconds(10))
    return "Article \(articleID), summarized."
}

@Suite("README cache example", .sharedRedis)
struct CacheReadmeExampleTests {
    @Test("the worker example in README.md is this code and works")
    func workerExample() async throws {
        let redisURL = try TestRedis.sharedURL
        let workerID = 1
        // README example: worker
        let logger = Logger(label: "worker")
        let redis = try RedisClient(url: redisURL, clientName: "worker-\(workerID)", logger: logger)
        let cache = try StampedeCache(redis: redis, namespace: "articles", policy: CachePolicy(
            freshFor: .seconds(3600), staleFor: .seconds(86_400),    // serve stale for a day while refreshing
            computeTimeout: .seconds(60), lockTTL: .seconds(90),     // lockTTL must exceed computeTimeout
            hot: .init(threshold: 10, window: .seconds(3600), ttl: .seconds(6 * 3600)),
            ttlJitter: 0.1), logger: logger)
        // Both are Services: the group runs them and, on shutdown, closes the cache, then the client.
        let services = ServiceGroup(services: [redis, cache], logger: logger)
        let summary = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let summary = try await cache.string(for: "summary:article-42") {
                try await summarize(articleID: 42)    // runs once fleet-wide, however many workers ask
            }
            print(summary.value, summary.source, summary.age)   // e.g. "Article 42, summarized." fresh_hit 12 seconds
            await services.triggerGracefulShutdown()            // your app: SIGTERM (gracefulShutdownSignals)
            try await group.waitForAll()
            return summary
        }
        // end of README example
        #expect(summary.value == "Article 42, summarized.")
        #expect(cache.isClosed)  // the group's shutdown closed it
        let (readme, source) = try readmeExampleMatches("worker")
        #expect(readme != nil && readme == source)
        let (article, _) = try readmeExampleMatches("worker", document: "Sources/StampedeCache/Documentation.docc/StampedeCache.md")
        #expect(article != nil && article == source)
    }
}
