import Foundation
import LLMCache

/// `stampede demo --semantic`: the same paraphrase workload through 4 workers, exact-only and then
/// exact + semantic, against a simulated upstream that counts its calls.
struct SemanticDemo {
    var redisURL: String?
    var embeddingsURL: String?
    var embeddingsModel: String?
    var clustersFile: String
    var pairsFile: String
    var threshold: Double?
    var requests: Int
    var callers: Int
    var zipf: Double
    var latencyMs: Int
    var seed: UInt64
    var json: Bool

    func run() async throws {
        let clusters = try ParaphraseClusters.load(clustersFile)
        let pairs = try LabelledPair.load(pairsFile)
        let items = clusters.requests(count: requests, zipf: zipf, seed: seed)
        let (report, description, chosen) = try await EmbeddingSource.with(url: embeddingsURL, model: embeddingsModel) { endpoint in
            try await VectorRedisTarget.with(explicitURL: redisURL) { url in
                let chosen: Double
                if let threshold {
                    chosen = threshold
                } else {
                    let vectors = try await EmbeddingSource.embedAll(pairs.flatMap { [$0.a, $0.b] }, with: endpoint.client)
                    chosen = SemanticTuneCommand.calibrate(pairs, vectors: vectors, targetPrecision: 0.99).recommended(guards: true)?.threshold ?? 0.92
                }
                Console.note("semantic demo: \(items.count) requests over \(clusters.clusters.count) questions in \(clusters.clusters.reduce(0) { $0 + $1.count }) wordings; exact only, then exact + semantic")
                let exact = try await SemanticWorkloadRunner.run(items, clusters: clusters, url: url, endpoint: endpoint, semantic: false, threshold: chosen, callersPerWorker: callers, upstreamLatency: .milliseconds(latencyMs))
                let hybrid = try await SemanticWorkloadRunner.run(items, clusters: clusters, url: url, endpoint: endpoint, semantic: true, threshold: chosen, callersPerWorker: callers, upstreamLatency: .milliseconds(latencyMs))
                return ((exact, hybrid), endpoint.description, chosen)
            }
        }
        let (exact, hybrid) = report
        if json {
            let object: [String: Any] = [
                "requests": exact.requests, "threshold": chosen, "embeddings": description,
                "upstream_calls_exact_only": exact.upstreamCalls, "upstream_calls_hybrid": hybrid.upstreamCalls,
                "hit_rate_exact_only": exact.hitRate, "hit_rate_hybrid": hybrid.hitRate, "wrong_answers_hybrid": hybrid.wrongAnswers,
                "sources_exact_only": exact.sources, "sources_hybrid": hybrid.sources,
                "embeddings_computed": hybrid.accounting.embeddingsComputed, "guard_rejections": hybrid.accounting.semanticGuardRejections,
                "near_misses": hybrid.accounting.semanticNearMisses, "semantic_money_saved_usd": hybrid.accounting.semanticMoneySaved,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let saved = exact.upstreamCalls - hybrid.upstreamCalls
        let percent = exact.upstreamCalls == 0 ? 0 : Double(saved) / Double(exact.upstreamCalls) * 100
        func pct(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
        func sources(_ counts: [String: Int]) -> String { counts.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
        print("""
        StampedeCache semantic demo: \(exact.requests) requests, 4 workers x \(callers) callers, \(clusters.clusters.count) support questions each asked in several wordings (Zipf \(zipf)), upstream \(latencyMs) ms
        embeddings: \(description); threshold \(String(format: "%.4f", chosen)) (tuned on \(pairs.count) labelled pairs in this run, guards on)

                                 exact only   exact + semantic
          upstream calls        \(String(exact.upstreamCalls).leftPadded(11))   \(String(hybrid.upstreamCalls).leftPadded(16))   (\(saved) fewer, \(String(format: "%.0f", percent))%)
          hit rate              \(pct(exact.hitRate).leftPadded(11))   \(pct(hybrid.hitRate).leftPadded(16))
          wrong answers served  \(String(exact.wrongAnswers).leftPadded(11))   \(String(hybrid.wrongAnswers).leftPadded(16))   (a semantic match to another question)

        answers by source, exact only:       \(sources(exact.sources))
        answers by source, exact + semantic: \(sources(hybrid.sources))
        semantic layer: \(hybrid.accounting.embeddingsComputed) texts embedded, \(hybrid.accounting.semanticGuardRejections) matches refused by guards, \(hybrid.accounting.semanticNearMisses) near misses below the threshold
        money saved by semantic answers at $2.50/$10 per 1M tokens: $\(String(format: "%.4f", hybrid.accounting.semanticMoneySaved))
        """)
    }
}

