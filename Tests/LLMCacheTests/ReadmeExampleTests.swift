import LLMCache
import RedisClient
import RedisTestSupport
import ServiceLifecycle
import Logging
import SimulatedLLM
import StampedeCache
import Testing

@Suite("README LLMCache example", .sharedRedis)
struct LLMReadmeExampleTests {
    @Test("the LLMCache example in README.md is this code and works")
    func llmExample() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "sk-test")
        let redisURL = try TestRedis.sharedURL
        let (workerID, baseURL, apiKey) = (1, server.baseURL, "sk-test")
        // README example: llm
        let redis = try RedisClient(url: redisURL, clientName: "worker-\(workerID)")
        let llm = try LLMCache(
            redis: redis,
            upstream: OpenAIClient(configuration: OpenAIConfiguration(baseURL: baseURL, apiKey: apiKey)),
            configuration: LLMCacheConfiguration(
                namespace: "support-bot",
                policy: CachePolicy(freshFor: .seconds(6 * 3600), staleFor: .seconds(7 * 86_400),
                                    computeTimeout: .seconds(60), lockTTL: .seconds(90)),
                keyOptions: RequestKeyOptions(promptVersion: "returns-prompt-3"),   // bump to retire old answers
                prices: PriceTable(models: ["gpt-4o-mini": .init(inputPerMillion: 0.15, outputPerMillion: 0.60)])))
        let services = ServiceGroup(services: [redis, llm], logger: Logger(label: "worker"))
        let (answer, tenant) = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }    // flushes accounting, promotes hot keys
            let request = ChatRequest(model: "gpt-4o-mini", messages: [
                .system("You answer questions about our return policy."),
                .user("Can I return a book after 30 days?"),
            ], temperature: 0)
            let answer = try await llm.complete(request)         // one upstream call fleet-wide
            print(answer.completion.content, answer.source)      // computed here; fresh_hit afterwards, on every worker
            let tenant = try await llm.complete(request, options: LLMRequestOptions(namespace: "tenant-42", maxStale: .seconds(600)))
            print(llm.accounting.total.moneySaved)               // USD saved by this process so far
            await services.triggerGracefulShutdown()             // your app: SIGTERM
            try await group.waitForAll()
            return (answer, tenant)
        }
        // end of README example
        #expect(answer.source == .computed || answer.source == .freshHit)
        #expect(tenant.namespace == "tenant-42")
        let (readme, source) = try readmeExampleMatches("llm")
        #expect(readme != nil && readme == source)
        await server.stop()
    }
}
