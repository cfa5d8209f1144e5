import ArgumentParser
import AsyncHTTPClient
import ChaosKit
import Foundation
import Hummingbird
import LLMCache
import Logging
import NIOCore
import RedisClient
import RedisServerProcess
import ServiceLifecycle
import SimulatedLLM
import StampedeCache
import StampedeProxy
import Synchronization

/// `stampede bench proxy`: the caching proxy in one run, on a private redis-server, in front of the
/// simulated upstream with a fixed latency: the proxy's overhead on misses against calling the
/// upstream directly, hit throughput and latency with 64 concurrent clients, and how long after
/// the leader's caller a follower (another request waiting on the same computation) gets its first
/// streamed token. The hit round is repeated on `GET /healthz` (an empty route) with the same
/// clients, so the hit rate is reported against this server's ceiling measured in the same run.
/// Misses are measured twice in the same run, alternating: with the proxy's default (the answer is
/// stored before it is returned) and with `commit_in_background` (returned first, stored after),
/// through a second tenant whose cache has it on.
struct ProxyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Benchmark `stampede serve` (in process, private Redis, simulated upstream): miss overhead vs direct, 64-client hits/s, follower first-token delay."
    )

    @Option(help: "Misses measured (each a new prompt), alternating with direct upstream calls.")
    var misses: Int = 300
    @Option(help: "Hits in the 64-client throughput round.")
    var hits: Int = 40_000
    @Option(help: "Concurrent HTTP clients in the hit round.")
    var concurrency: Int = 64
    @Option(help: "Leader/follower pairs for the first-token delay.")
    var followers: Int = 30
    @Option(help: "The simulated upstream's latency for misses, in milliseconds.")
    var upstreamMs: Int = 10
    @Flag(help: "Turn on the near-cache (in-process L1 kept coherent by CLIENT TRACKING) for the hits.")
    var nearCache = false

    @Option(help: "The hit rounds' load generator: wrk (the Debian package: C, one thread, in its own process), in-process (AsyncHTTPClient in this process), or auto (wrk when it is on PATH). The in-process rounds always run; wrk's are added.")
    var loadGenerator: LoadGenerator = .auto
    @Option(help: "Seconds of each wrk round (hits, then GET /healthz).")
    var wrkSeconds: Int = 5

    enum LoadGenerator: String, ExpressibleByArgument, CaseIterable {
        case auto, wrk, inProcess = "in-process"
    }

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        _ = try NumericInput.integer(misses, "--misses", in: 1...1_000_000)
        _ = try NumericInput.integer(hits, "--hits", in: 1...100_000_000)
        _ = try NumericInput.integer(concurrency, "--concurrency", in: 1...1_024)
        _ = try NumericInput.integer(followers, "--followers", in: 1...10_000)
        _ = try NumericInput.integer(upstreamMs, "--upstream-ms", in: 1...60_000)
        _ = try NumericInput.integer(wrkSeconds, "--wrk-seconds", in: 1...3_600)
        if loadGenerator == .wrk, WrkLoad.executable == nil { throw ValidationError("--load-generator wrk: wrk is not on PATH (apt-get install wrk)") }
    }

    private static let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    private static let upstreamKey = "bench-upstream-key"
    private static let virtualKey = "bench-virtual-key"
    /// The tenant whose cache commits in the background.
    private static let backgroundKey = "bench-background-key"

    struct Results {
        var direct = LatencySamples()
        var proxied = LatencySamples()
        /// Misses through the tenant whose cache commits in the background.
        var proxiedBackground = LatencySamples()
        var hits = LatencySamples()
        var hitOps = 0.0
        /// `GET /healthz` per second with the same clients: the server's ceiling for an empty route.
        var healthzOps = 0.0
        var firstTokenDelay = LatencySamples()
        /// The same rounds driven by wrk, when it ran.
        var wrkHits: WrkLoad.Report?
        var wrkHealthz: WrkLoad.Report?
    }

    func run() async throws {
        var options = RedisServerOptions()
        options.unixSocket = false
        options.tcpPort = 0
        let server = try await RedisServerProcess.start(options)
        Console.note("Started a private redis-server (pid \(server.pid)); it is stopped when this run ends.")
        let upstream = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(upstreamMs)), streamChunks: 6), apiKey: Self.upstreamKey)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(64, concurrency * 2))
        ))
        do {
            let results = try await withProxy(redisURL: server.url, upstream: upstream) { port in
                try await measure(port: port, upstream: upstream, http: http)
            }
            try await http.shutdown()
            await upstream.stop()
            await server.stop()
            report(results)
        } catch {
            try? await http.shutdown()
            await upstream.stop()
            await server.stop()
            throw error
        }
    }

    /// Runs the proxy in this process (the same router and services as `stampede serve`) on a free port.
    private func withProxy<T: Sendable>(redisURL: String, upstream: SimulatedLLMServer, _ body: (Int) async throws -> T) async throws -> T {
        let redis = try RedisClient(url: redisURL, clientName: "bench-proxy", logger: Self.quiet)
        let policy = CachePolicy(freshFor: .seconds(3_600), staleFor: .seconds(3_600), computeTimeout: .seconds(30), lockTTL: .seconds(40), ttlJitter: 0)
        func cache(namespace: String, commitInBackground: Bool) throws -> LLMCache {
            var configuration = LLMCacheConfiguration(namespace: namespace, policy: policy)
            configuration.policy.commitInBackground = commitInBackground
            if nearCache { configuration.nearCache = NearCacheConfiguration() }
            return try LLMCache(
                redis: redis,
                upstream: OpenAIClient(configuration: OpenAIConfiguration(baseURL: upstream.baseURL, apiKey: Self.upstreamKey, maxRetries: 0), logger: Self.quiet),
                configuration: configuration, logger: Self.quiet
            )
        }
        let llm = try cache(namespace: "benchproxy", commitInBackground: false)
        let background = try cache(namespace: "benchproxybg", commitInBackground: true)
        let profiles = [
            UpstreamProfile(name: "sim", baseURL: upstream.baseURL, apiKeyEnvironment: nil),
            UpstreamProfile(name: "sim-bg", baseURL: upstream.baseURL, apiKeyEnvironment: nil),
        ]
        let tenants = [
            TenantConfiguration(name: "bench", namespace: "benchproxy", keySHA256: VirtualKey.sha256Hex(Self.virtualKey), upstream: "sim"),
            TenantConfiguration(name: "bench-bg", namespace: "benchproxybg", keySHA256: VirtualKey.sha256Hex(Self.backgroundKey), upstream: "sim-bg"),
        ]
        let context = ProxyContext(
            redis: redis, caches: ["sim": llm, "sim-bg": background], upstreams: profiles, tenants: try TenantDirectory(tenants), maxBodyBytes: 1 << 20,
            environment: [:], metricsText: { "" }
        )
        let bound = Mutex<CheckedContinuation<Int, Never>?>(nil)
        let app = Application(
            router: ProxyRouter.build(context, logger: Self.quiet),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            services: [redis, llm, background],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                bound.withLock { $0 }?.resume(returning: port)
            },
            logger: Self.quiet
        )
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: Self.quiet)
        let running = Task { try await group.run() }
        let port = await withCheckedContinuation { continuation in bound.withLock { $0 = continuation } }
        do {
            let result = try await body(port)
            await group.triggerGracefulShutdown()
            try await running.value
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
    }

    private func measure(port: Int, upstream: SimulatedLLMServer, http: HTTPClient) async throws -> Results {
        var results = Results()
        let proxyURL = "http://127.0.0.1:\(port)/v1/chat/completions"
        let directURL = upstream.baseURL + "/chat/completions"
        let clock = ContinuousClock()
        func post(_ url: String, key: String, prompt: String, stream: Bool = false) -> HTTPClientRequest {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: Self.body(prompt: prompt, stream: stream)))
            return request
        }
        func call(_ request: HTTPClientRequest) async throws {
            let response = try await http.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw ValidationError("\(request.url) answered \(response.status)") }
        }
        // Warm both paths (connections, scripts).
        try await call(post(directURL, key: Self.upstreamKey, prompt: "warm"))
        try await call(post(proxyURL, key: Self.virtualKey, prompt: "warm"))
        try await call(post(proxyURL, key: Self.backgroundKey, prompt: "warm"))

        // 1. Misses: each proxied request is a new prompt (an upstream call through the cache:
        //    get-or-lock, the call, commit); direct requests call the upstream alone. The two
        //    tenants (commit answered first, commit in the background) take turns going first.
        for index in 0..<misses {
            var start = clock.now
            try await call(post(directURL, key: Self.upstreamKey, prompt: "direct \(index)"))
            results.direct.append((clock.now - start).nanosecondsClamped)
            for backgroundTurn in index % 2 == 0 ? [false, true] : [true, false] {
                start = clock.now
                try await call(post(proxyURL, key: backgroundTurn ? Self.backgroundKey : Self.virtualKey, prompt: "miss \(index)"))
                let elapsed = (clock.now - start).nanosecondsClamped
                if backgroundTurn { results.proxiedBackground.append(elapsed) } else { results.proxied.append(elapsed) }
            }
        }

        // 2. Hits from `concurrency` clients over 100 stored answers.
        for index in 0..<100 { try await call(post(proxyURL, key: Self.virtualKey, prompt: "hot \(index)")) }
        let perClient = max(1, hits / concurrency)
        let started = clock.now
        let samples = try await withThrowingTaskGroup(of: LatencySamples.self) { group in
            for client in 0..<concurrency {
                group.addTask {
                    var samples = LatencySamples()
                    for request in 0..<perClient {
                        let start = clock.now
                        try await call(post(proxyURL, key: Self.virtualKey, prompt: "hot \((client * 31 + request) % 100)"))
                        samples.append((clock.now - start).nanosecondsClamped)
                    }
                    return samples
                }
            }
            return try await group.reduce(into: LatencySamples()) { $0.append(contentsOf: $1) }
        }
        results.hitOps = Double(perClient * concurrency) / (clock.now - started).secondsDouble
        results.hits = samples

        // 2b. The same clients and request count on `GET /healthz` (no body, no cache, no Redis):
        //     what this server and load generator reach for an empty route in the same run, the
        //     ceiling the hits are compared with.
        let healthURL = "http://127.0.0.1:\(port)/healthz"
        let healthStarted = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    for _ in 0..<perClient { try await call(HTTPClientRequest(url: healthURL)) }
                }
            }
            try await group.waitForAll()
        }
        results.healthzOps = Double(perClient * concurrency) / (clock.now - healthStarted).secondsDouble

        // 2c. Both rounds again from wrk (its own process, C): the same 100 stored answers in turn.
        if loadGenerator == .wrk || (loadGenerator == .auto && WrkLoad.executable != nil) {
            let requests = (0..<100).map { index in
                WrkLoad.Request(
                    method: "POST", headers: [("Authorization", "Bearer \(Self.virtualKey)"), ("Content-Type", "application/json")],
                    body: Self.body(prompt: "hot \(index)", stream: false)
                )
            }
            results.wrkHits = try await WrkLoad.run(url: proxyURL, requests: requests, connections: concurrency, seconds: wrkSeconds)
            results.wrkHealthz = try await WrkLoad.run(url: healthURL, requests: [WrkLoad.Request()], connections: concurrency, seconds: wrkSeconds)
        }

        // 3. Follower first-token delay: a leader streams a new question (upstream: 400 ms, 6 pieces);
        //    once its upstream call is under way a follower asks the same; both record when their
        //    first content piece arrives.
        upstream.setBehaviour(.init(latency: .fixed(.milliseconds(400)), streamChunks: 6))
        for round in 0..<followers {
            let prompt = "follow \(round)"
            let callsBefore = upstream.callCount
            async let leaderFirst = firstContent(http, post(proxyURL, key: Self.virtualKey, prompt: prompt, stream: true), clock: clock)
            while upstream.callCount == callsBefore { try await Task.sleep(for: .milliseconds(1)) }
            async let followerFirst = firstContent(http, post(proxyURL, key: Self.virtualKey, prompt: prompt, stream: true), clock: clock)
            let (leader, follower) = try await (leaderFirst, followerFirst)
            results.firstTokenDelay.append(max(0, (follower - leader).nanosecondsClamped))
        }
        return results
    }

    /// A chat completions body asking `prompt`.
    private static func body(prompt: String, stream: Bool) -> String {
        JSONValue.object([
            "model": "sim-model", "messages": [.object(["role": "user", "content": .string(prompt)])], "stream": .bool(stream),
        ]).canonicalJSON()
    }

    /// Sends a streaming request; returns when its first content piece arrived (and reads it to the end).
    private func firstContent(_ http: HTTPClient, _ request: HTTPClientRequest, clock: ContinuousClock) async throws -> ContinuousClock.Instant {
        let response = try await http.execute(request, timeout: .seconds(60))
        guard response.status == .ok else { throw ValidationError("a stream answered \(response.status)") }
        var first: ContinuousClock.Instant?
        for try await buffer in response.body {
            if first == nil, String(buffer: buffer).contains("\"content\":\"") { first = clock.now }
        }
        guard let first else { throw ValidationError("a stream carried no content") }
        return first
    }

    private func report(_ results: Results) {
        func ms(_ samples: LatencySamples, _ p: Double) -> Double { samples.percentileMicros(p) / 1_000 }
        let overhead = [50.0, 95, 99].map { max(0, ms(results.proxied, $0) - ms(results.direct, $0)) }
        let backgroundOverhead = [50.0, 95, 99].map { max(0, ms(results.proxiedBackground, $0) - ms(results.direct, $0)) }
        let machine = IdleWakeupPolicy.current()
        if json {
            var object: [String: Any] = [
                "miss_overhead_p50_ms": overhead[0], "miss_overhead_p95_ms": overhead[1], "miss_overhead_p99_ms": overhead[2],
                "miss_overhead_background_commit_p50_ms": backgroundOverhead[0], "miss_overhead_background_commit_p95_ms": backgroundOverhead[1],
                "miss_overhead_background_commit_p99_ms": backgroundOverhead[2],
                "direct_p50_ms": ms(results.direct, 50), "proxied_miss_p50_ms": ms(results.proxied, 50),
                "proxied_miss_background_commit_p50_ms": ms(results.proxiedBackground, 50),
                "hit_ops": results.hitOps, "healthz_ops": results.healthzOps, "hit_ops_ratio_vs_healthz": results.hitOps / max(results.healthzOps, 1),
                "hit_p50_ms": ms(results.hits, 50), "hit_p99_ms": ms(results.hits, 99),
                "follower_first_token_delay_p50_ms": ms(results.firstTokenDelay, 50), "follower_first_token_delay_p99_ms": ms(results.firstTokenDelay, 99),
                "misses": misses, "hits": hits, "concurrency": concurrency, "followers": followers, "upstream_ms": upstreamMs,
            ]
            if let hits = results.wrkHits, let healthz = results.wrkHealthz {
                object["wrk_hit_ops"] = hits.requestsPerSecond
                object["wrk_hit_p50_ms"] = hits.p50Milliseconds
                object["wrk_hit_p99_ms"] = hits.p99Milliseconds
                object["wrk_healthz_ops"] = healthz.requestsPerSecond
                object["wrk_hit_ops_ratio_vs_healthz"] = hits.requestsPerSecond / max(healthz.requestsPerSecond, 1)
                object["wrk_seconds"] = wrkSeconds
            }
            object.merge(machine.jsonFields) { first, _ in first }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func f(_ value: Double) -> String { String(format: "%.2f", value) }
        var wrkLines = "hits from wrk: not run (wrk is not on PATH; apt-get install wrk)"
        if let hits = results.wrkHits, let healthz = results.wrkHealthz {
            wrkLines = """
                hits from wrk (C, one thread, its own process), \(concurrency) connections, \(wrkSeconds) s: \(String(format: "%.0f", hits.requestsPerSecond)) hits/s, p50 \(f(hits.p50Milliseconds)) ms, p99 \(f(hits.p99Milliseconds)) ms   (goal: ≥ 20,000 hits/s)
                  GET /healthz from wrk: \(String(format: "%.0f", healthz.requestsPerSecond)) requests/s; hits reach \(String(format: "%.2f", hits.requestsPerSecond / max(healthz.requestsPerSecond, 1)))× of it
                """
        }
        print("""
            stampede serve, in process, private redis-server, simulated upstream (\(upstreamMs) ms per miss)
            miss overhead vs calling the upstream directly (\(misses) each): p50 \(f(overhead[0])) ms, p95 \(f(overhead[1])) ms, p99 \(f(overhead[2])) ms   (goal: p99 ≤ 2 ms)
              direct p50 \(f(ms(results.direct, 50))) ms, through the proxy p50 \(f(ms(results.proxied, 50))) ms
            the same with commit_in_background (answered, then stored): p50 \(f(backgroundOverhead[0])) ms, p95 \(f(backgroundOverhead[1])) ms, p99 \(f(backgroundOverhead[2])) ms
            hits from the in-process client, \(concurrency) concurrent clients: \(String(format: "%.0f", results.hitOps)) hits/s, p50 \(f(ms(results.hits, 50))) ms, p99 \(f(ms(results.hits, 99))) ms
              the same clients on GET /healthz (an empty route: this server's ceiling here): \(String(format: "%.0f", results.healthzOps)) requests/s; hits reach \(String(format: "%.2f", results.hitOps / max(results.healthzOps, 1)))× of it
            \(wrkLines)
            follower's first token after the leader's caller's (\(followers) pairs): p50 \(f(ms(results.firstTokenDelay, 50))) ms, p99 \(f(ms(results.firstTokenDelay, 99))) ms   (goal: ≤ 5 ms)
            """ + (machine.summary.map { "\n" + $0 } ?? ""))
    }
}
