import Hummingbird
import HummingbirdTesting
import RedisClient
import RedisTestSupport
import StampedeCache
import Synchronization
import Testing

@Suite("README example: the cache inside a Hummingbird 2 application", .sharedRedis)
struct HummingbirdExampleTests {
    @Test("two requests for one product load it once; the application's shutdown closes the cache")
    func hummingbirdExample() async throws {
        let redisURL = try TestRedis.sharedURL
        let loads = Atomic<Int>(0)
        @Sendable func loadProduct(_ id: String) async throws -> String {
            loads.add(1, ordering: .relaxed)
            return "product \(id)"
        }
        // README example: hummingbird
        let redis = try RedisClient(url: redisURL, clientName: "web-1")
        let cache = try StampedeCache(redis: redis, namespace: "products", policy: CachePolicy(freshFor: .seconds(60), staleFor: .seconds(600)))
        let router = Router()
        router.get("products/:id") { _, context -> String in
            let id = try context.parameters.require("id")
            return try await cache.string(for: "product:\(id)") { try await loadProduct(id) }.value
        }
        // The application runs the client and the cache; on shutdown the HTTP server stops first,
        // then the cache closes (computations in flight are stored), then the client drains.
        let app = Application(router: router, services: [redis, cache])
        // try await app.runService()   serves until SIGTERM or SIGINT (the test runs it with app.test(.live))
        // end of README example
        let id = "\(UInt32.random(in: 0..<UInt32.max))"
        try await app.test(.live) { client in
            for _ in 0..<2 {
                try await client.execute(uri: "/products/\(id)", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == "product \(id)")
                }
            }
        }
        #expect(loads.load(ordering: .relaxed) == 1)
        #expect(cache.isClosed)
        let (readme, source) = try readmeExampleMatches("hummingbird")
        #expect(readme != nil && readme == source)
        let (article, _) = try readmeExampleMatches("hummingbird", document: "Sources/StampedeCache/Documentation.docc/StampedeCache.md")
        #expect(article != nil && article == source)
    }
}
