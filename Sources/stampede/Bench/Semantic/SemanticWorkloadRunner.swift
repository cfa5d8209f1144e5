import Foundation
import LLMCache
import Logging
import RedisClient
import SimulatedLLM
import StampedeCache

/// Runs the paraphrase-cluster workload through 4 LLMCache workers (exact-only or hybrid) against
/// a simulated upstream that counts its calls; shared by `stampede bench semantic` and
/// `stampede demo --semantic`.
enum SemanticWorkloadRunner {
    private static let quiet = Logger(label: "semantic", factory: { _ in SwiftLogNoOpLogHandler() })

    static func request(_ text: String) -> ChatRequest {
        ChatRequest(model: "sim", messages: [.system("You are the product's support assistant."), .user(text)])
    }

    static func makeWorkers(
        url: String, server: SimulatedLLMServer, endpoint: EmbeddingSource.Endpoint, namespace: String, semantic: Bool, threshold: Double, count: Int
    ) throws -> [(RedisClient, LLMCache)] {
        try (0..<count).map { number in
            let redis = try RedisClient(url: url, clientName: "semantic-\(number)", logger: quiet)
            let upstream = OpenAIClient(configuration: OpenAIConfiguration(baseURL: server.baseURL, apiKey: "bench", maxRetries: 0), logger: quiet)
            let configuration = LLMCacheConfiguration(
                namespace: namespace,
                policy: CachePolicy(freshFor: .seconds(600), staleFor: .seconds(600), computeTimeout: .seconds(30), lockTTL: .seconds(40)),
                prices: PriceTable(fallback: .init(inputPerMillion: 2.5, outputPerMillion: 10)),
                semantic: semantic ? SemanticConfiguration(embeddings: endpoint.client, dimensions: endpoint.dimensions, threshold: threshold, indexName: "stampede-bench-sem") : nil
            )
            return (redis, try LLMCache(redis: redis, upstream: upstream, configuration: configuration, logger: quiet))
        }
    }

    /// `requests` in order, `callersPerWorker` at a time on each of 4 workers.
    static func run(
        _ requests: [(cluster: Int, text: String)], clusters: ParaphraseClusters, url: String, endpoint: EmbeddingSource.Endpoint,
        semantic: Bool, threshold: Double, callersPerWorker: Int, upstreamLatency: Duration = .milliseconds(20)
    ) async throws -> SemanticBenchReport.Mode {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(upstreamLatency)), apiKey: "bench")
        let namespace = "semantic-\(semantic ? "hybrid" : "exact")-\(UInt32.random(in: 0..<UInt32.max))"
        let workers = try makeWorkers(url: url, server: server, endpoint: endpoint, namespace: namespace, semantic: semantic, threshold: threshold, count: 4)
        // The cluster of every wording's exact key, to judge which semantic answers were wrong.
        var clusterOfKey: [String: Int] = [:]
        for (cluster, wordings) in clusters.clusters.enumerated() {
            for text in wordings { clusterOfKey[request(text).cacheKey().cacheKey] = cluster }
        }
        var mode = SemanticBenchReport.Mode()
        let wave = workers.count * callersPerWorker
        var start = 0
        do {
            while start < requests.count {
                let slice = Array(requests[start..<min(start + wave, requests.count)])
                let results = try await withThrowingTaskGroup(of: (Int, LLMResult).self) { group in
                    for (offset, item) in slice.enumerated() {
                        let llm = workers[offset % workers.count].1
                        group.addTask { (item.cluster, try await llm.complete(request(item.text))) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                for (cluster, result) in results {
                    mode.requests += 1
                    mode.sources[result.sourceLabel, default: 0] += 1
                    if let match = result.semantic {
                        mode.semanticHits += 1
                        if clusterOfKey[match.matchedKey] != cluster { mode.wrongAnswers += 1 }
                    } else if !result.calledUpstream {
                        mode.exactHits += 1
                    }
                }
                start += slice.count
            }
        } catch {
            for (redis, llm) in workers { await llm.close(); await redis.close() }
            await server.stop()
            throw error
        }
        mode.upstreamCalls = server.callCount
        for (_, llm) in workers { mode.accounting.add(llm.accounting.total) }
        for (redis, llm) in workers {
            await llm.close()
            await redis.close()
        }
        await server.stop()
        return mode
    }
}
