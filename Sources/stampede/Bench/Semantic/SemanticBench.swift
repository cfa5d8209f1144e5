import ArgumentParser
import ChaosKit
import Foundation
import LLMCache
import LocalServices
import Logging
import RedisClient
import RedisServerProcess
import SimulatedLLM
import StampedeCache

/// `stampede bench semantic`: exact-only vs hybrid on paraphrase clusters, false hits on held-out
/// pairs, KNN latency and recall at 10k and 100k entries, embedding latency, and a semantic herd.
struct SemanticBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "semantic",
        abstract: "Benchmark semantic caching: hit rates exact vs hybrid, false hits, KNN latency and recall, embedding latency, semantic herd.",
        discussion: """
        Runs on a private Redis 8.2 + RediSearch (or --redis-url, which needs vector search) and the local
        all-MiniLM-L6-v2 (or --embeddings-url). The threshold is the one `stampede tune semantic` recommends
        on --pairs in this run (with guards, precision >= 0.99) unless --threshold is given; false hits are
        measured on --holdout, pairs never used to tune anything. Goals: lookup p50 <= 1 ms at 100k entries
        with recall@1 >= 0.95, false-hit rate <= 1%, semantic herd <= 2 upstream calls.
        """
    )

    @Option(name: .customLong("redis-url"), help: "A Redis with vector search (default: a private Redis 8.2 + RediSearch started for this run).")
    var redisURL: String?
    @Option(name: .customLong("embeddings-url"), help: "An OpenAI-compatible API root (default: the local model; key in EMBEDDINGS_API_KEY).")
    var embeddingsURL: String?
    @Option(name: .customLong("embeddings-model"), help: "The embedding model at --embeddings-url.")
    var embeddingsModel: String?
    @Option(help: "Labelled pairs the threshold is tuned on.")
    var pairs: String = "Benchmarks/semantic/pairs.jsonl"
    @Option(help: "Held-out labelled pairs, comma-separated; false_hit_rate is the first file's (holdout-2: never used to tune anything; holdout: seen while the opposites guard was added).")
    var holdout: String = "Benchmarks/semantic/holdout-2.jsonl,Benchmarks/semantic/holdout.jsonl"
    @Option(help: "Paraphrase clusters of the workload.")
    var clusters: String = "Benchmarks/semantic/clusters.jsonl"
    @Option(help: "The similarity threshold (default: tuned on --pairs in this run).")
    var threshold: Double?
    @Option(help: "Workload requests per mode (exact-only, hybrid).")
    var requests: Int = 400
    @Option(help: "Zipf exponent of the clusters' popularity.")
    var zipf: Double = 1.0
    @Option(help: "Index sizes for the KNN lookup measurement, comma-separated.")
    var sizes: String = "10000,100000"
    @Option(help: "KNN lookups measured per size.")
    var queries: Int = 200
    @Option(name: .customLong("ef-runtime"), help: "HNSW EF_RUNTIME for the lookups.")
    var efRuntime: Int = 100
    @Option(help: "Simultaneous paraphrases of one new question in the herd (over 4 workers).")
    var herd: Int = 32
    @Option(help: "Seed of the workload and the synthetic vectors.")
    var seed: UInt64 = 1
    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        if let threshold { _ = try NumericInput.number(threshold, "--threshold", in: 0.01...1) }
        _ = try NumericInput.integer(requests, "--requests", in: 1...1_000_000)
        _ = try NumericInput.number(zipf, "--zipf", in: 0...10)
        _ = try NumericInput.integer(queries, "--queries", in: 1...100_000)
        _ = try NumericInput.integer(efRuntime, "--ef-runtime", in: 1...10_000)
        _ = try NumericInput.integer(herd, "--herd", in: 2...1_000)
        _ = try parsedSizes()
    }

    func parsedSizes() throws -> [Int] {
        let values = try sizes.split(separator: ",").map { part -> Int in
            guard let value = Int(part.trimmingCharacters(in: .whitespaces)), (1...2_000_000).contains(value) else {
                throw ValidationError("--sizes: '\(part)' must be a whole number from 1 to 2,000,000")
            }
            return value
        }
        guard !values.isEmpty else { throw ValidationError("--sizes needs at least one size") }
        return values
    }

    private static let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    func run() async throws {
        let labelled = try LabelledPair.load(pairs)
        let heldOutFiles = holdout.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !heldOutFiles.isEmpty else { throw ValidationError("--holdout needs at least one file") }
        let heldOut = try heldOutFiles.map { ($0, try LabelledPair.load($0)) }
        let workload = try ParaphraseClusters.load(clusters)
        let sizes = try parsedSizes()
        let report = try await EmbeddingSource.with(url: embeddingsURL, model: embeddingsModel) { endpoint in
            try await VectorRedisTarget.with(explicitURL: redisURL) { url in
                try await measure(endpoint: endpoint, url: url, labelled: labelled, heldOut: heldOut, workload: workload, sizes: sizes)
            }
        }
        print(json ? report.json : report.table)
    }

    private func measure(
        endpoint: EmbeddingSource.Endpoint, url: String, labelled: [LabelledPair], heldOut: [(String, [LabelledPair])], workload: ParaphraseClusters, sizes: [Int]
    ) async throws -> SemanticBenchReport {
        var report = SemanticBenchReport(embeddings: endpoint.description)
        // 1. Threshold (tuned on the starter set) and false hits on the held-out set.
        Console.note("bench semantic: calibrating on \(labelled.count) pairs, false hits on \(heldOut.map { "\($0.1.count) pairs of \($0.0)" }.joined(separator: ", "))")
        let allPairs = labelled + heldOut.flatMap(\.1)
        let vectors = try await EmbeddingSource.embedAll(allPairs.flatMap { [$0.a, $0.b] } + workload.clusters.flatMap { $0 }, with: endpoint.client)
        let tuned = SemanticTuneCommand.calibrate(labelled, vectors: vectors, targetPrecision: 0.99)
        let chosen = threshold ?? tuned.recommended(guards: true)?.threshold ?? 0.92
        report.threshold = chosen
        for (file, pairs) in heldOut {
            let held = SemanticTuneCommand.calibrate(pairs, vectors: vectors, targetPrecision: 0.99)
            let guarded = held.point(at: chosen, guards: true)
            let plain = held.point(at: chosen, guards: false)
            report.heldOut.append(.init(
                file: file, negatives: pairs.filter { !$0.same }.count, falseHits: guarded.falsePositives, falseHitRate: guarded.falseHitRate,
                falseHitRateWithoutGuards: plain.falseHitRate, recall: guarded.recall
            ))
        }

        // 2. Embedding latency: single uncached texts.
        var embedLatencies = LatencySamples()
        for number in 0..<30 {
            let began = ContinuousClock.now
            _ = try await endpoint.client.embed(["benchmark latency probe \(number) \(seed) \(UInt32.random(in: 0..<UInt32.max))"], deadline: .now + .seconds(60))
            embedLatencies.append((ContinuousClock.now - began).nanosecondsClamped)
        }
        report.embedP50Milliseconds = embedLatencies.percentileMicros(50) / 1_000

        // 3. Workload: exact-only vs hybrid, same requests.
        let requests = workload.requests(count: self.requests, zipf: zipf, seed: seed)
        Console.note("bench semantic: \(requests.count) requests over \(workload.clusters.count) paraphrase clusters, exact-only then hybrid")
        report.exact = try await SemanticWorkloadRunner.run(requests, clusters: workload, url: url, endpoint: endpoint, semantic: false, threshold: chosen, callersPerWorker: 1)
        report.hybrid = try await SemanticWorkloadRunner.run(requests, clusters: workload, url: url, endpoint: endpoint, semantic: true, threshold: chosen, callersPerWorker: 1)

        // 4. Semantic herd.
        report.herdUpstreamCalls = try await runHerd(url: url, endpoint: endpoint, threshold: chosen)
        report.herdCallers = herd

        // 5. KNN latency and recall per size.
        let redis = try RedisClient(url: url, clientName: "stampede-bench", logger: Self.quiet)
        let bases = vectors.keys.sorted().compactMap { vectors[$0] }
        do {
            for size in sizes {
                Console.note("bench semantic: KNN at \(size) entries (inserting)")
                report.lookups.append(try await VectorLookupBench.run(redis: redis, bases: bases, size: size, queries: queries, efRuntime: efRuntime, seed: seed))
            }
            await redis.close()
        } catch {
            await redis.close()
            throw error
        }
        report.efRuntime = efRuntime
        return report
    }

    private func runHerd(url: String, endpoint: EmbeddingSource.Endpoint, threshold: Double) async throws -> Int {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(500))), apiKey: "bench")
        let workers = try SemanticWorkloadRunner.makeWorkers(url: url, server: server, endpoint: endpoint, namespace: "bench-herd-\(UInt32.random(in: 0..<UInt32.max))", semantic: true, threshold: threshold, count: 4)
        let openings = ["How do I", "How can I", "What's the way to", "How would I", "Steps to", "What is the best way to", "Help me", "Explain how to"]
        let endings = ["archive old projects in the dashboard", "archive my old projects in the dashboard", "archive old projects from the dashboard", "archive the old projects in my dashboard"]
        var texts: [String] = []
        for ending in endings { for opening in openings { texts.append("\(opening) \(ending)?") } }
        texts = Array(texts.prefix(herd))
        while texts.count < herd { texts.append(texts[texts.count % 32] + " please") }
        _ = try await withThrowingTaskGroup(of: LLMResult.self) { group in
            for (number, text) in texts.enumerated() {
                let llm = workers[number % workers.count].1
                group.addTask { try await llm.complete(SemanticWorkloadRunner.request(text)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let calls = server.callCount
        for (redis, llm) in workers {
            await llm.close()
            await redis.close()
        }
        await server.stop()
        return calls
    }
}

