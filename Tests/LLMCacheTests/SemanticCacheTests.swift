import Foundation
@testable import LLMCache
import LocalServices
import Logging
import RedisClient
import RedisTestSupport
import SimulatedLLM
import StampedeCache
import Testing

private let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

private func namespace() -> String { "sem\(UInt32.random(in: 0..<UInt32.max))" }

private func ask(_ text: String, model: String = "sim", system: String = "Be brief.", temperature: Double? = nil) -> ChatRequest {
    var request = ChatRequest(model: model, messages: [.system(system), .user(text)])
    request.temperature = temperature
    return request
}

/// A worker with semantic caching on: real Redis 8 + RediSearch, the real all-MiniLM-L6-v2.
private func makeSemanticWorker(
    server: SimulatedLLMServer, namespace: String, threshold: Double = 0.85, guards: SemanticGuards = SemanticGuards(),
    embeddings: (any EmbeddingsUpstream)? = nil, dimensions: Int = LocalEmbedder.dimensions, lockTTL: Duration = .seconds(14),
    indexName: String = "stampede-semantic-test", text: SemanticText = .lastUserMessage
) async throws -> (RedisClient, LLMCache) {
    let services = try SemanticServices.current
    let redis = try makeClient(services.redis.url, poolSize: 2)
    let upstream = OpenAIClient(configuration: OpenAIConfiguration(baseURL: server.baseURL, apiKey: "k", maxRetries: 0), logger: quiet)
    let embeddingClient = embeddings ?? OpenAIEmbeddingsClient(configuration: EmbeddingsConfiguration(baseURL: services.embedder.baseURL, model: LocalEmbedder.model))
    let configuration = LLMCacheConfiguration(
        namespace: namespace,
        policy: CachePolicy(freshFor: .seconds(60), staleFor: .seconds(60), computeTimeout: .seconds(10), lockTTL: lockTTL, ttlJitter: 0),
        prices: PriceTable(models: ["sim": .init(inputPerMillion: 1_000, outputPerMillion: 2_000)]),
        accountingFlushInterval: .milliseconds(100),
        semantic: SemanticConfiguration(embeddings: embeddingClient, dimensions: dimensions, threshold: threshold, text: text, guards: guards, indexName: indexName)
    )
    return (redis, try LLMCache(redis: redis, upstream: upstream, configuration: configuration, logger: quiet))
}

@Suite("Guards and the semantic cacheability filter (pure text rules)")
struct SemanticGuardTests {
    @Test("each guard names the near-miss it catches; paraphrases pass every guard")
    func guardsCatchTheirKinds() {
        let guards = SemanticGuards()
        #expect(guards.rejection(prompt: "What is the difference between the iPhone 14 and the iPhone 15?", candidate: "What is the difference between the iPhone 13 and the iPhone 15?") == "numbers")
        #expect(guards.rejection(prompt: "Convert two dollars", candidate: "Convert three dollars") == "numbers")
        #expect(guards.rejection(prompt: "What does \"idempotent\" mean?", candidate: "What does \"immutable\" mean?") == "quoted_text")
        #expect(guards.rejection(prompt: "Why is my phone charging?", candidate: "Why is my phone not charging?") == "negation")
        #expect(guards.rejection(prompt: "Why does my code compile?", candidate: "Why doesn't my code compile?") == "negation")
        #expect(guards.rejection(prompt: "Transfer money from savings to checking", candidate: "Transfer money from checking to savings") == "relation_order")
        #expect(guards.rejection(prompt: "Is Python faster than Java?", candidate: "Is Java faster than Python?") == "relation_order")
        #expect(guards.rejection(prompt: "What is the population of Paris, France?", candidate: "What is the population of Paris, Texas?") == "entities")
        #expect(guards.rejection(prompt: "How do I export data to CSV?", candidate: "How do I import data from CSV?") == "opposites")
        #expect(guards.rejection(prompt: "How do I log in to the dashboard?", candidate: "How do I log out of the dashboard?") == "opposites")
        #expect(guards.rejection(prompt: "How do I lock a cell?", candidate: "How do I unlock a cell?") == "opposites")
        #expect(guards.rejection(prompt: "How do I connect the printer?", candidate: "How do I disconnect the printer?") == "opposites")
        // A word both prompts share on one side is not an opposition ("turn on" vs "enable ... on").
        #expect(guards.rejection(prompt: "How do I turn on dark mode on iPhone?", candidate: "How do I enable dark mode on iPhone?") == nil)
        // Paraphrases: rewording, word order, case and typos of non-names pass.
        #expect(guards.rejection(prompt: "How do I reset my password?", candidate: "I forgot my password, how do I change it?") == nil)
        #expect(guards.rejection(prompt: "In Python, how do I reverse a list?", candidate: "How do I reverse a list in Python?") == nil)
        #expect(guards.rejection(prompt: "How do I install Docker on Ubuntu?", candidate: "how to instal docker on ubuntu") == nil)
        #expect(guards.rejection(prompt: "Convert 1,000 dollars to euros", candidate: "convert 1000 dollars into euros") == nil)
        #expect(SemanticGuards.none.rejection(prompt: "Convert USD to EUR", candidate: "Convert EUR to USD") == nil)
    }

    @Test("personal and time-sensitive prompts are kept out of the semantic layer; rules are pluggable")
    func cacheabilityFilter() {
        let filter = SemanticCacheability(rules: [{ !$0.contains("ACME-") }])
        #expect(filter.reasonToSkip("What's the status of my order?") != nil)
        #expect(filter.reasonToSkip("What is the weather today?") != nil)
        #expect(filter.reasonToSkip("Who is playing right now?") != nil)
        #expect(filter.reasonToSkip("Ticket ACME-42 summary") == "semantic cacheability rule 0 excluded it")
        #expect(filter.reasonToSkip("How do I reset my password?") == nil)
        // Whole words only: "todays" is not "today", "ordering" is not "order".
        #expect(filter.reasonToSkip("Explain my ordering of priorities") == nil)
    }
}

@Suite("Semantic caching against Redis 8 + RediSearch and the real all-MiniLM-L6-v2", .semanticServices, .serialized)
struct SemanticCacheTests {
    @Test("a paraphrase is answered from the cached answer (no upstream call), then by its own back-filled exact key")
    func paraphraseHitsAndBackFills() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let ns = namespace()
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: ns)
        let first = try await llm.complete(ask("How do I reset my password?"))
        #expect(first.calledUpstream && first.semantic == nil)
        let paraphrase = try await llm.complete(ask("What are the steps to reset my password?"))
        #expect(!paraphrase.calledUpstream)
        #expect(paraphrase.sourceLabel == "semantic_hit")
        #expect(paraphrase.completion == first.completion)
        let match = try #require(paraphrase.semantic)
        #expect(match.matchedKey == first.key?.cacheKey)
        #expect(match.similarity >= 0.85 && match.similarity < 1)
        // Back-fill: the same wording again is an exact fresh hit.
        let again = try await llm.complete(ask("What are the steps to reset my password?"))
        #expect(again.source == .freshHit && again.semantic == nil)
        #expect(server.callCount == 1)
        let counters = llm.accounting.total
        #expect(counters.requests == 3 && counters.upstreamCalls == 1 && counters.semanticHits == 1 && counters.freshHits == 1)
        let usage = try #require(first.completion.usage)
        #expect(counters.semanticTokensSaved == usage.totalTokens)
        #expect(counters.embeddingsComputed == 2)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("the semantic example in README.md is this code and works: the paraphrase is a semantic hit")
    func readmeSemanticExample() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "sk-test")
        let services = try SemanticServices.current
        let (redisURL, baseURL, apiKey, embeddingsURL) = (services.redis.url, server.baseURL, "sk-test", services.embedder.baseURL)
        // README example: semantic
        let redis = try RedisClient(url: redisURL, clientName: "worker")   // Redis 8 / Redis Stack / Redis Cloud
        let llm = try LLMCache(
            redis: redis,
            upstream: OpenAIClient(configuration: OpenAIConfiguration(baseURL: baseURL, apiKey: apiKey)),
            configuration: LLMCacheConfiguration(
                namespace: "support-bot",
                semantic: SemanticConfiguration(
                    embeddings: OpenAIEmbeddingsClient(configuration: EmbeddingsConfiguration(
                        baseURL: embeddingsURL, model: "all-MiniLM-L6-v2")),   // or OpenAI, Ollama, vLLM
                    dimensions: 384,
                    threshold: 0.7225)))                                      // from `stampede tune semantic`
        try await llm.prepareSemanticIndex()      // optional: fail at startup on a wrong model or Redis
        let system = ChatMessage.system("You are the support assistant of Acme.")
        let first = try await llm.complete(ChatRequest(model: "gpt-4o-mini", messages: [system, .user("How do I reset my password?")]))
        let second = try await llm.complete(ChatRequest(model: "gpt-4o-mini", messages: [system, .user("What are the steps to reset my password?")]))
        print(first.sourceLabel, second.sourceLabel)             // computed semantic_hit
        print(second.semantic?.similarity ?? 0, second.calledUpstream)   // 0.945 false
        // end of README example
        #expect(first.sourceLabel == "computed")
        #expect(second.sourceLabel == "semantic_hit" && !second.calledUpstream)
        #expect(server.callCount == 1)
        let (readme, source) = try readmeExampleMatches("semantic")
        #expect(readme != nil && readme == source)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("a stored prompt asked again with exact matching off is always found (KNN 1 on itself), 40 of 40")
    func storedPromptIsAlwaysFound() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let ns = namespace()
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: ns, threshold: 0.999)
        let topics = ["rust", "swift", "redis", "kafka", "postgres", "docker", "nginx", "linux", "git", "python"]
        var prompts: [String] = []
        for topic in topics {
            for form in ["What is %@ used for?", "How do I install %@?", "Is %@ hard to learn?", "Who maintains %@?"] {
                prompts.append(form.replacingOccurrences(of: "%@", with: topic))
            }
        }
        for prompt in prompts { _ = try await llm.complete(ask(prompt)) }
        #expect(server.callCount == 40)
        // The exact entries go (as LRU eviction or invalidate(key:) would remove them); the
        // semantic documents stay, and KNN must find each prompt's own document again.
        for prompt in prompts { try await llm.cache(for: ns).invalidate(key: ask(prompt).cacheKey().cacheKey) }
        var found = 0
        for prompt in prompts where try await llm.complete(ask(prompt)).semantic != nil { found += 1 }
        #expect(found == 40)
        #expect(server.callCount == 40)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("near misses above the threshold: the guards refuse all 6 (counted, computed); with the guards off, all 6 are served the wrong answer")
    func guardsRejectNearMisses() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: namespace(), threshold: 0.80)
        let pairs = [
            ("Transfer money from savings to checking", "Transfer money from checking to savings"),
            ("How do I cancel my subscription?", "How do I not cancel my subscription?"),
            ("How many days are in 2024?", "How many days are in 2023?"),
            ("Is Python faster than Java?", "Is Java faster than Python?"),
            ("What is the population of Paris, France?", "What is the population of Paris, Texas?"),
            ("Why is my phone charging?", "Why is my phone not charging?"),
        ]
        for (stored, _) in pairs { _ = try await llm.complete(ask(stored)) }
        for (_, nearMiss) in pairs {
            let result = try await llm.complete(ask(nearMiss))
            #expect(result.calledUpstream && result.semantic == nil, "\(nearMiss)")
        }
        #expect(server.callCount == 12)
        #expect(llm.accounting.total.semanticGuardRejections == 6)
        #expect(llm.accounting.total.semanticHits == 0)
        await llm.close(); await redis.close()
        // The same pairs with every guard off: cosine similarity alone (each pair scores 0.863-0.993)
        // serves all 6 near misses the other question's answer.
        let (plainRedis, plain) = try await makeSemanticWorker(server: server, namespace: namespace(), threshold: 0.80, guards: .none)
        for (stored, _) in pairs { _ = try await plain.complete(ask(stored)) }
        var wronglyServed = 0
        for (_, nearMiss) in pairs where try await plain.complete(ask(nearMiss)).semantic != nil { wronglyServed += 1 }
        #expect(wronglyServed == 6)
        #expect(plain.accounting.total.semanticGuardRejections == 0)
        await plain.close(); await plainRedis.close(); await server.stop()
    }

    @Test("the same paraphrase is never matched across model, system prompt, temperature, tenant or generation")
    func noMatchAcrossContexts() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let ns = namespace()
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: ns)
        _ = try await llm.complete(ask("How do I reset my password?"))
        let paraphrase = "What are the steps to reset my password?"
        let variants: [(ChatRequest, LLMRequestOptions)] = [
            (ask(paraphrase, model: "sim-2"), .init()),
            (ask(paraphrase, system: "Answer in French."), .init()),
            (ask(paraphrase, temperature: 0.9), .init()),
            (ask(paraphrase), .init(namespace: ns + "-tenant-b")),
        ]
        for (request, options) in variants {
            let result = try await llm.complete(request, options: options)
            #expect(result.calledUpstream && result.semantic == nil)
        }
        // A generation bump (invalidateAll) orphans the old documents.
        _ = try await llm.cache(for: ns).invalidateAll()
        #expect(try await llm.complete(ask(paraphrase)).calledUpstream)
        #expect(server.callCount == 6)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("multi-turn: with the last user message embedded, a reworded earlier turn is another context; with all user messages embedded, it matches")
    func embeddedTextSelection() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        func conversation(_ first: String, _ second: String) -> ChatRequest {
            ChatRequest(model: "sim", messages: [.system("Be brief."), .user(first), .assistant("Sure."), .user(second)])
        }
        let original = conversation("I use the web app.", "How do I reset my password?")
        let reworded = conversation("I'm on the web app.", "What are the steps to reset my password?")
        let (lastRedis, last) = try await makeSemanticWorker(server: server, namespace: namespace())
        _ = try await last.complete(original)
        #expect(try await last.complete(reworded).calledUpstream)
        let (allRedis, all) = try await makeSemanticWorker(server: server, namespace: namespace(), text: .allUserMessages)
        _ = try await all.complete(original)
        let matched = try await all.complete(reworded)
        #expect(matched.semantic != nil && !matched.calledUpstream)
        #expect(server.callCount == 3)
        await last.close(); await lastRedis.close(); await all.close(); await allRedis.close(); await server.stop()
    }

    @Test("invalidate(request) removes the exact entry and the semantic document: a paraphrase computes again")
    func invalidationRemovesSemanticMatches() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: namespace())
        let original = ask("How do I enable two-factor authentication?")
        _ = try await llm.complete(original)
        #expect(try await llm.complete(ask("How can I turn on two-factor authentication?")).semantic != nil)
        #expect(try await llm.invalidate(original))
        #expect(try await llm.complete(ask("How do I switch on two-factor authentication?")).calledUpstream)
        #expect(server.callCount == 2)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("per request: semantic false and a higher minSimilarity skip the match; an invalid minSimilarity is refused")
    func perRequestControls() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: namespace())
        _ = try await llm.complete(ask("How do I reset my password?"))
        #expect(try await llm.complete(ask("What are the steps to reset my password?"), options: .init(semantic: false)).calledUpstream)
        #expect(try await llm.complete(ask("How can I reset the password?"), options: .init(minSimilarity: 0.9999)).calledUpstream)
        await #expect(throws: SemanticError.self) { _ = try await llm.complete(ask("x"), options: .init(minSimilarity: 1.5)) }
        #expect(server.callCount == 3)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("embedding endpoint down: the exact path still answers and caches; every semantic step is skipped and counted")
    func embeddingsDownKeepsExactPath() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let services = try SemanticServices.current
        let failing = CountingEmbeddings(base: OpenAIEmbeddingsClient(configuration: .init(baseURL: services.embedder.baseURL, model: LocalEmbedder.model)), failing: true)
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: namespace(), embeddings: failing)
        // Texts no other test embedded (the embedding cache in Redis would answer for those).
        let salt = UInt32.random(in: 0..<UInt32.max)
        #expect(try await llm.complete(ask("How do I reset my password? (\(salt))")).calledUpstream)
        #expect(try await llm.complete(ask("How do I reset my password? (\(salt))")).source == .freshHit)
        #expect(try await llm.complete(ask("What are the steps to reset my password? (\(salt))")).calledUpstream)
        #expect(server.callCount == 2)
        #expect(llm.accounting.total.semanticSkipped == 2)
        #expect(failing.calls == 2)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("a model returning another dimension than configured is a clear error naming both numbers")
    func dimensionMismatchIsAClearError() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let (redis, llm) = try await makeSemanticWorker(server: server, namespace: namespace(), dimensions: 512, indexName: "stampede-semantic-dim")
        do {
            try await llm.prepareSemanticIndex()
            Issue.record("expected a dimension mismatch")
        } catch let error as SemanticError {
            #expect(error == .dimensionMismatch(index: 512, embedding: 384, model: LocalEmbedder.model))
            #expect(error.description.contains("384") && error.description.contains("512"))
        }
        try await llm.dropSemanticIndex()
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("the index and the registration script come back after FLUSHALL + SCRIPT FLUSH and after a server restart; paraphrases hit again")
    func indexRecreatedAfterFlushAndRestart() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        try await withPrivateRedis(try await VectorRedis.options()) { vector in
            let services = try SemanticServices.current
            let redis = try makeClient(vector.url, poolSize: 2)
            let configuration = LLMCacheConfiguration(
                namespace: namespace(),
                policy: CachePolicy(freshFor: .seconds(60), staleFor: .seconds(60), computeTimeout: .seconds(10), lockTTL: .seconds(14), ttlJitter: 0),
                semantic: SemanticConfiguration(embeddings: OpenAIEmbeddingsClient(configuration: .init(baseURL: services.embedder.baseURL, model: LocalEmbedder.model)), dimensions: 384, threshold: 0.85)
            )
            let upstream = OpenAIClient(configuration: OpenAIConfiguration(baseURL: server.baseURL, apiKey: "k", maxRetries: 0), logger: quiet)
            let llm = try LLMCache(redis: redis, upstream: upstream, configuration: configuration, logger: quiet)
            for round in 0..<3 {
                if round == 1 {
                    try await redis.send("FLUSHALL")
                    try await redis.send("SCRIPT", "FLUSH")
                }
                if round == 2 { try await vector.restart() }
                _ = try await llm.complete(ask("How do I reset my password?"))
                let paraphrase = try await llm.complete(ask("What are the steps to reset my password?"))
                #expect(paraphrase.semantic != nil, "round \(round)")
            }
            #expect(try await llm.semanticIndexInfo()?.dimensions == 384)
            #expect(server.callCount == 3)
            await llm.close(); await redis.close()
        }
        await server.stop()
    }

    @Test("semantic herd: 16 different paraphrases of one new question at once across 4 workers make exactly 1 upstream call")
    func semanticHerdIsProtected() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(400))), apiKey: "k")
        let ns = namespace()
        var workers: [(RedisClient, LLMCache)] = []
        for _ in 0..<4 { workers.append(try await makeSemanticWorker(server: server, namespace: ns)) }
        let paraphrases = [
            "How do I export my data to CSV?", "How can I export my data to CSV?", "What's the way to export my data to CSV?",
            "How do I export my data to a CSV file?", "How can I export my data as CSV?", "How do I export data to CSV?",
            "How would I export my data to CSV?", "Steps to export my data to CSV?", "How to export my data to CSV?",
            "How do I get my data exported to CSV?", "How can I export all my data to CSV?", "How should I export my data to CSV?",
            "Can I export my data to CSV?", "How do you export data to CSV?", "How do I export my data into CSV?", "Exporting my data to CSV: how?",
        ]
        let results = try await withThrowingTaskGroup(of: LLMResult.self) { group in
            for (index, text) in paraphrases.enumerated() {
                let llm = workers[index % 4].1
                group.addTask { try await llm.complete(ask(text)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Every pair of these wordings is at least 0.853 similar (measured) and passes the guards, and
        // registrations are atomic and numbered, so the earliest registration computes and the other
        // 15 wait for it (or, arriving after it finished, hit its answer).
        #expect(results.count == 16)
        #expect(server.callCount == 1)
        #expect(results.filter(\.calledUpstream).count == 1)
        #expect(results.filter { $0.semantic != nil }.count == 15)
        #expect(Set(results.map(\.completion)).count == 1)
        for (redis, llm) in workers { await llm.close(); await redis.close() }
        await server.stop()
    }

    @Test("concurrent embeddings are micro-batched: 24 distinct texts at once reach the embedding server in at most 3 requests")
    func embeddingsAreMicroBatched() async throws {
        let services = try SemanticServices.current
        let redis = try makeClient(services.redis.url, poolSize: 2)
        let before = try await services.embedder.served()
        let embedder = Embedder(
            upstream: OpenAIEmbeddingsClient(configuration: .init(baseURL: services.embedder.baseURL, model: LocalEmbedder.model)),
            redis: redis, dimensions: 384, cacheTTL: .seconds(60), maxBatch: 8, maxWait: .milliseconds(50), logger: quiet
        )
        let salt = UInt32.random(in: 0..<UInt32.max)
        let vectors = try await withThrowingTaskGroup(of: [Float].self) { group in
            for index in 0..<24 { group.addTask { try await embedder.embed("micro-batch text \(index) \(salt)", deadline: .now + .seconds(30)).vector } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let after = try await services.embedder.served()
        #expect(vectors.count == 24 && vectors.allSatisfy { $0.count == 384 })
        #expect(after.inputs - before.inputs == 24)
        #expect(after.requests - before.requests <= 3)
        #expect(embedder.batcher.calls.load(ordering: .relaxed) == after.requests - before.requests)
        // Cached now: the same texts again make no upstream call.
        for index in 0..<24 { #expect(try await embedder.embed("micro-batch text \(index) \(salt)", deadline: .now + .seconds(30)).cached) }
        #expect(try await services.embedder.served().requests == after.requests)
        await redis.close()
    }
}
