import ArgumentParser
import AsyncHTTPClient
import Foundation
import LLMCache
import Logging
import NIOCore
import RedisClient
import SimulatedLLM
import StampedeCache
import Synchronization

/// `stampede demo`: a fleet of workers asking an LLM the same popular questions, through
/// LLMCache and then through a plain cache-aside, against a simulated upstream that counts calls.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Simulate a fleet of workers calling an LLM through LLMCache, and compare with a plain cache-aside.",
        discussion: """
        Starts a private redis-server when REDIS_URL is not set (and stops it afterwards), and an
        in-process simulated LLM speaking the OpenAI chat-completions shape. Every request goes
        through the real LLMCache and OpenAI client code. The same workload (same seed) then runs
        through a plain cache-aside (GET; on a miss call the LLM and SET) so the report compares the
        upstream calls each approach paid, counted by the upstream itself.
        """
    )

    @Option(name: .customLong("redis-url"), help: "Redis to use (default: $REDIS_URL, else a private redis-server on a unix socket).")
    var redisURL: String?
    @OptionGroup(title: "TLS (rediss:// URLs)") var tls: TLSOptions
    @Option(help: "Worker processes to simulate (each with its own Redis connections and cache).")
    var workers: Int = 4
    @Option(help: "Concurrent callers per worker.")
    var callers: Int = 16
    @Option(help: "Requests per caller.")
    var requestsPerCaller: Int = 40
    @Option(help: "Distinct prompts (keys).")
    var keys: Int = 300
    @Option(help: "Zipf exponent of prompt popularity.")
    var zipf: Double = 1.1
    @Option(help: "Upstream latency p50, milliseconds.")
    var latencyMs: Int = 400
    @Option(help: "Upstream latency p99, milliseconds.")
    var latencyP99Ms: Int = 1_500
    @Option(help: "Upstream error rate (0-1).")
    var errorRate: Double = 0.02
    @Option(help: "Seconds an answer stays fresh (short, so answers expire during the run).")
    var freshSeconds: Double = 3
    @Option(help: "Seconds an answer may be served stale after that.")
    var staleSeconds: Double = 60
    @Option(help: "Longest think time between a caller's requests, milliseconds.")
    var thinkMs: Int = 50
    @Option(help: "Seed of the workload and the simulated upstream.")
    var seed: UInt64 = 42
    @Flag(help: "Skip the cache-aside comparison run.")
    var skipCacheAside = false
    @Flag(help: "Print one JSON object instead of the report.")
    var json = false
    @Flag(help: "The semantic demo instead: paraphrases of support questions, exact-only vs exact + semantic, on a Redis with vector search and the local embedding model.")
    var semantic = false
    @Option(name: .customLong("embeddings-url"), help: "--semantic: an OpenAI-compatible embeddings API root (default: the local all-MiniLM-L6-v2; key in EMBEDDINGS_API_KEY).")
    var embeddingsURL: String?
    @Option(name: .customLong("embeddings-model"), help: "--semantic: the embedding model at --embeddings-url.")
    var embeddingsModel: String?
    @Option(help: "--semantic: the similarity threshold (default: tuned on the labelled pairs in this run).")
    var threshold: Double?
    @Option(name: .customLong("semantic-requests"), help: "--semantic: requests per mode.")
    var semanticRequests: Int = 600

    func validate() throws {
        _ = try NumericInput.integer(workers, "--workers", in: 1...256)
        _ = try NumericInput.integer(callers, "--callers", in: 1...4_096)
        _ = try NumericInput.integer(requestsPerCaller, "--requests-per-caller", in: 1...1_000_000)
        _ = try NumericInput.integer(keys, "--keys", in: 1...10_000_000)
        _ = try NumericInput.number(zipf, "--zipf", in: 0...10)
        _ = try NumericInput.number(errorRate, "--error-rate", in: 0...1)
        _ = try NumericInput.integer(latencyMs, "--latency-ms", in: 1...600_000)
        _ = try NumericInput.integer(latencyP99Ms, "--latency-p99-ms", in: latencyMs...600_000)
        _ = try NumericInput.number(freshSeconds, "--fresh-seconds", in: 0.001...NumericInput.maximumSeconds)
        _ = try NumericInput.number(staleSeconds, "--stale-seconds", in: 0...NumericInput.maximumSeconds)
        _ = try NumericInput.integer(thinkMs, "--think-ms", in: 0...600_000)
        if let threshold { _ = try NumericInput.number(threshold, "--threshold", in: 0.01...1) }
        _ = try NumericInput.integer(semanticRequests, "--semantic-requests", in: 1...1_000_000)
    }

    func run() async throws {
        if semantic {
            try await SemanticDemo(
                redisURL: redisURL, embeddingsURL: embeddingsURL, embeddingsModel: embeddingsModel,
                clustersFile: "Benchmarks/semantic/clusters.jsonl", pairsFile: "Benchmarks/semantic/pairs.jsonl", threshold: threshold,
                requests: semanticRequests, callers: 4, zipf: 1.0, latencyMs: latencyMs, seed: seed, json: json
            ).run()
            return
        }
        let report = try await RedisTarget.with(explicitURL: redisURL, tcp: false, tls: tls) { url in try await runDemo(url: url) }
        print(json ? report.json : report.text)
        // The simulated LLM's injected errors are part of the demo; failures from Redis are not.
        if report.stampede.infrastructureErrors > 0 {
            Console.note("FAIL: \(report.stampede.infrastructureErrors) requests failed because of Redis, not the simulated LLM (see the errors above)")
            throw ExitCode.failure
        }
    }

    private static let quiet = Logger(label: "demo", factory: { _ in SwiftLogNoOpLogHandler() })

    private func runDemo(url: String) async throws -> DemoReport {
        // Every caller may call the LLM at once: async-http-client's default of 8 connections per host would queue them.
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(64, workers * callers))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        defer { Task { try? await http.shutdown() } }
        let upstream = try await SimulatedLLMServer.start(
            SimulatedLLMBehaviour(latency: .logNormal(p50: .milliseconds(latencyMs), p99: .milliseconds(latencyP99Ms)), errorRate: errorRate, seed: seed)
        )
        defer { Task { await upstream.stop() } }
        Console.note("Simulated LLM upstream at \(upstream.baseURL) (latency p50 \(latencyMs) ms, p99 \(latencyP99Ms) ms, error rate \(errorRate)).")
        let plan = WorkloadPlan(workers: workers, callers: callers, requestsPerCaller: requestsPerCaller, keys: keys, zipf: zipf, maxThinkMs: thinkMs, seed: seed)
        Console.note("Workload: \(workers) workers x \(callers) callers x \(requestsPerCaller) requests = \(plan.totalRequests) requests over \(plan.distinctKeys) distinct prompts (Zipf s=\(zipf)), answers fresh for \(freshSeconds) s.")
        let namespace = "demo\(UInt32.random(in: 0..<UInt32.max))"
        var report = DemoReport(plan: plan, workers: workers, callers: callers)

        let stampede = try await runStampede(plan: plan, url: url, upstream: upstream, http: http, namespace: namespace)
        report.stampede = stampede
        if !skipCacheAside {
            let before = upstream.callCount
            report.cacheAside = try await runCacheAside(plan: plan, url: url, upstream: upstream, http: http, prefix: "\(namespace)-aside")
            report.cacheAside?.upstreamCalls = upstream.callCount - before
        }
        await upstream.stop()
        return report
    }

    private func request(for key: Int) -> ChatRequest {
        ChatRequest(model: "sim-gpt-4o-mini", messages: [
            .system("You are a concise assistant for an online bookshop."),
            .user("Customer question #\(key): what should I know about book \(key * 7919 % 100_003) before buying it?"),
        ], temperature: 0.2)
    }

    // MARK: LLMCache run

    private func runStampede(plan: WorkloadPlan, url: String, upstream: SimulatedLLMServer, http: HTTPClient, namespace: String) async throws -> RunStats {
        let policy = CachePolicy(
            freshFor: .milliseconds(Int64(freshSeconds * 1000)), staleFor: .milliseconds(Int64(staleSeconds * 1000)),
            computeTimeout: .seconds(10), lockTTL: .seconds(15), ttlJitter: 0.1
        )
        let prices = PriceTable(models: ["sim-gpt-4o-mini": .init(inputPerMillion: 0.15, outputPerMillion: 0.60)])
        let configuration = LLMCacheConfiguration(namespace: namespace, policy: policy, prices: prices)
        let readyAt = Box<[String: ContinuousClock.Instant]>([:])
        var fleet: [(RedisClient, LLMCache)] = []
        for index in 0..<workers {
            var redisConfiguration = try RedisConfiguration(url: url)
            redisConfiguration.clientName = "demo-worker-\(index)"
            redisConfiguration.poolSize = 1
            let client = try RedisClient(configuration: redisConfiguration, logger: Self.quiet)
            let openAI = OpenAIClient(configuration: OpenAIConfiguration(baseURL: upstream.baseURL, apiKey: "demo", maxRetries: 0, workerID: "worker-\(index)"), httpClient: http, logger: Self.quiet)
            let timed = ReadyTimeRecordingUpstream(base: openAI, readyAt: readyAt)
            fleet.append((client, try LLMCache(redis: client, upstream: timed, configuration: configuration, logger: Self.quiet)))
        }
        let runs = fleet.map { BackgroundRun($0.1.run) }
        let stats = RunStatsCollector()
        let progress = Progress(label: "LLMCache", total: plan.totalRequests, stats: stats, upstream: upstream)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (workerIndex, callersPlan) in plan.plan.enumerated() {
                let llm = fleet[workerIndex].1
                for steps in callersPlan {
                    group.addTask {
                        for step in steps {
                            if step.thinkMs > 0 { try await Task.sleep(for: .milliseconds(step.thinkMs)) }
                            let request = self.request(for: step.key)
                            let begin = ContinuousClock.now
                            do {
                                let result = try await llm.complete(request)
                                let end = ContinuousClock.now
                                var wake: Duration?
                                if result.source == .receivedFromOtherWorker, !result.calledUpstream,
                                   let ready = readyAt.value[request.messages.last.map { $0.text } ?? ""] {
                                    wake = end - ready
                                }
                                stats.record(source: result.source.label, latency: end - begin, wake: wake, coalesced: !result.calledUpstream && result.source == .computed)
                            } catch {
                                stats.recordError(error)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        progress.stop()
        var result = stats.snapshot(elapsed: elapsed)
        // Counted after the fleet closed: close() waits for the background refreshes that served
        // requests started, so each of them has reached the upstream by now.
        for (_, llm) in fleet { await llm.close() }
        for run in runs { await run.finished() }
        result.upstreamCalls = upstream.callCount
        let accounting = try await fleet[0].1.fleetAccounting(namespaces: [namespace]).total
        result.tokensSaved = accounting.promptTokensServedFromCache + accounting.completionTokensServedFromCache
        result.moneySaved = accounting.moneySaved
        for (client, _) in fleet { await client.close() }
        return result
    }

    // MARK: cache-aside baseline

    /// GET; on a miss call the LLM and SET with the same freshness. No lock: every worker that misses calls the LLM.
    private func runCacheAside(plan: WorkloadPlan, url: String, upstream: SimulatedLLMServer, http: HTTPClient, prefix: String) async throws -> RunStats {
        var fleet: [(RedisClient, OpenAIClient)] = []
        for index in 0..<workers {
            var redisConfiguration = try RedisConfiguration(url: url)
            redisConfiguration.poolSize = 1
            fleet.append((try RedisClient(configuration: redisConfiguration, logger: Self.quiet),
                          OpenAIClient(configuration: OpenAIConfiguration(baseURL: upstream.baseURL, apiKey: "demo", maxRetries: 0, workerID: "aside-\(index)"), httpClient: http, logger: Self.quiet)))
        }
        let stats = RunStatsCollector()
        let before = upstream.callCount
        let progress = Progress(label: "cache-aside", total: plan.totalRequests, stats: stats, upstream: upstream, baseline: before)
        let freshMs = Int64(freshSeconds * 1000)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (workerIndex, callersPlan) in plan.plan.enumerated() {
                let (redis, openAI) = fleet[workerIndex]
                for steps in callersPlan {
                    group.addTask {
                        for step in steps {
                            if step.thinkMs > 0 { try await Task.sleep(for: .milliseconds(step.thinkMs)) }
                            let request = self.request(for: step.key)
                            let key = "\(prefix):\(request.cacheKey().cacheKey)"
                            let begin = ContinuousClock.now
                            do {
                                if try await redis.get(key) != nil {
                                    stats.record(source: "fresh_hit", latency: ContinuousClock.now - begin, wake: nil, coalesced: false)
                                    continue
                                }
                                let completion = try await openAI.complete(request, deadline: .now + .seconds(10))
                                let body = try JSONEncoder().encode(completion)
                                try await redis.set(key, to: RedisArgument(bytes: Array(body)), expiresIn: .milliseconds(freshMs))
                                stats.record(source: "computed", latency: ContinuousClock.now - begin, wake: nil, coalesced: false)
                            } catch {
                                stats.recordError(error)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        progress.stop()
        let result = stats.snapshot(elapsed: ContinuousClock.now - started)
        for (client, _) in fleet { await client.close() }
        return result
    }
}

/// Records when each prompt's answer came back from the upstream, to measure follower wake-up.
struct ReadyTimeRecordingUpstream: ChatCompletionUpstream {
    let base: any ChatCompletionUpstream
    let readyAt: Box<[String: ContinuousClock.Instant]>

    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatCompletion {
        let completion = try await base.complete(request, deadline: deadline)
        let prompt = request.messages.last.map { $0.text } ?? ""
        readyAt.update { $0[prompt] = .now }
        return completion
    }

    func stream(_ request: ChatRequest, deadline: ContinuousClock.Instant, onDelta: @escaping @Sendable (ChatDelta) -> Void) async throws -> ChatCompletion {
        try await base.stream(request, deadline: deadline, onDelta: onDelta)
    }
}
