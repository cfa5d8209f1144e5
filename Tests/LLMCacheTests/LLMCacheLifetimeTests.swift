import LLMCache
import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
import SimulatedLLM
import StampedeCache
import Testing

private let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

@Suite("LLMCache: one lifetime for every tenant namespace", .sharedRedis)
struct LLMCacheLifetimeTests {
    private func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("never happened: \(what)")
    }

    @Test("run() flushes the accounting, releases an idle tenant namespace (unsubscribing its channel), keeps the default one; close() is final")
    func tenantsAreReleasedWhenIdle() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let redis = try makeClient(try TestRedis.sharedURL)
        let namespace = "life\(UInt32.random(in: 0..<UInt32.max))"
        let llm = try LLMCache(
            redis: redis,
            upstream: OpenAIClient(configuration: OpenAIConfiguration(baseURL: server.baseURL, apiKey: "k", maxRetries: 0), logger: quiet),
            configuration: LLMCacheConfiguration(namespace: namespace, accountingFlushInterval: .milliseconds(20), idleNamespaceRelease: .seconds(1)),
            logger: quiet
        )
        let running = Task { try await llm.run() }
        let request = ChatRequest(model: "sim", messages: [.user("hello")])
        let tenant = "\(namespace)-t"
        _ = try await llm.complete(request, options: LLMRequestOptions(namespace: tenant))
        _ = try await llm.complete(request)
        #expect(llm.liveNamespaces == 2)
        // A computation held open keeps the tenant busy (never released while in use), however
        // slowly the loop gets to start it on a loaded machine.
        let gate = TestGate()
        let holding = Task { try await llm.cache(for: tenant).value(for: "held") { try await gate.pass(); return [1] } }
        let tenantChannel = "stampede:notify:\(tenant)"
        try await waitUntil("the tenant's channel is subscribed by the loop's start") { redis.shardSubscriber.listenerCount(channel: tenantChannel) == 1 }
        #expect(llm.liveNamespaces == 2)
        gate.open()
        _ = try await holding.value
        try await waitUntil("the accounting reached Redis without an explicit flush") {
            try await LLMCache.fleetAccounting(redis: redis, namespaces: [namespace, tenant]).total.requests == 2
        }
        try await waitUntil("the idle tenant is released") { llm.liveNamespaces == 1 }
        #expect(redis.shardSubscriber.listenerCount(channel: tenantChannel) == 0)
        #expect(redis.shardSubscriber.listenerCount(channel: "stampede:notify:\(namespace)") == 1)
        // Used again, it comes back.
        let again = try await llm.complete(request, options: LLMRequestOptions(namespace: tenant))
        #expect(again.source == .freshHit)
        #expect(llm.liveNamespaces == 2)

        await llm.close()
        try await running.value  // close() ends run()
        do {
            _ = try await llm.complete(request)
            Issue.record("a closed LLMCache answered")
        } catch CacheError.Code.closed {}
        #expect(redis.shardSubscriber.listenerCount(channel: "stampede:notify:\(namespace)") == 0)
        await redis.close()
        await server.stop()
    }

    @Test("invalid intervals are refused at init, naming the setting")
    func intervalsAreValidated() async throws {
        let redis = try makeClient("redis://127.0.0.1:1")
        let upstream = OpenAIClient(configuration: OpenAIConfiguration(baseURL: "http://127.0.0.1:1", apiKey: "k"), logger: quiet)
        #expect(throws: CacheConfigurationError.self) {
            _ = try LLMCache(redis: redis, upstream: upstream, configuration: LLMCacheConfiguration(accountingFlushInterval: .zero), logger: quiet)
        }
        do {
            _ = try LLMCache(redis: redis, upstream: upstream, configuration: LLMCacheConfiguration(idleNamespaceRelease: .milliseconds(10)), logger: quiet)
            Issue.record("accepted")
        } catch {
            #expect(error.setting == "idleNamespaceRelease")
        }
        await redis.close()
    }
}
