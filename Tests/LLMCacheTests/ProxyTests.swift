import AsyncHTTPClient
import Foundation
import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
import SimulatedLLM
import StampedeProxy
import Testing

/// `stampede serve` as users run it: the real binary, on the shared redis-server, in front of the
/// simulated OpenAI upstream, driven by the official `openai` Python package and by `curl`.
@Suite("stampede serve: the OpenAI-compatible caching proxy, driven by the openai Python package and curl", .serialized, .sharedRedis)
struct ProxyTests {
    static let upstreamKey = "upstream-secret-key"
    static let alphaKey = "sk-alpha-virtual-key"
    static let betaKey = "sk-beta-virtual-key"
    static let narrowKey = "sk-narrow-virtual-key"

    /// A running proxy (or two on the same Redis) in front of one simulated upstream.
    struct Running {
        let upstream: SimulatedLLMServer
        let ports: [Int]
        var baseURL: String { "http://127.0.0.1:\(ports[0])/v1" }
        var origin: String { "http://127.0.0.1:\(ports[0])" }
    }

    /// Starts `instances` proxies, each a `stampede serve` process, and stops them afterwards.
    func withProxy<T>(
        instances: Int = 1, latency: Duration = .milliseconds(300), environment extra: [String: String] = [:], passThrough: Bool = false,
        commitInBackground: Bool = false, _ body: (Running) async throws -> T
    ) async throws -> T {
        // With pass-through, the upstream accepts any key (each caller brings its own).
        let upstream = try await SimulatedLLMServer.start(.init(latency: .fixed(latency), streamChunks: 6), apiKey: passThrough ? nil : Self.upstreamKey)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stampede-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let namespaceSuffix = String(UInt32.random(in: 0..<UInt32.max))
        let configuration = ProxyConfiguration(
            upstreams: [UpstreamProfile(name: "sim", baseURL: upstream.baseURL, apiKeyEnvironment: "SIM_UPSTREAM_KEY", maxRetries: 0)],
            tenants: [
                TenantConfiguration(name: "alpha", namespace: "alpha\(namespaceSuffix)", keySHA256: VirtualKey.sha256Hex(Self.alphaKey), upstream: "sim"),
                TenantConfiguration(name: "beta", namespace: "beta\(namespaceSuffix)", keySHA256: VirtualKey.sha256Hex(Self.betaKey), upstream: "sim"),
                TenantConfiguration(name: "narrow", namespace: "narrow\(namespaceSuffix)", keySHA256: VirtualKey.sha256Hex(Self.narrowKey), upstream: "sim", models: ["another-model"]),
            ],
            prices: ["sim-model": ModelPrice(inputPerMillion: 0.15, outputPerMillion: 0.6)],
            passThrough: passThrough ? PassThroughConfiguration(upstream: "sim", hmacSecretEnvironment: "PT_SECRET") : nil,
            commitInBackground: commitInBackground
        )
        let path = directory.appendingPathComponent("proxy.json").path
        try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: path))
        var ports: [Int] = []
        var servers: [Task<ChildRun, any Error>] = []
        for _ in 0..<instances {
            let port = try ServerSupport.pickFreePort()
            ports.append(port)
            let environment = [
                "REDIS_URL": try TestRedis.sharedURL, "SIM_UPSTREAM_KEY": Self.upstreamKey, "STAMPEDE_FRESH_FOR": "60", "LOG_LEVEL": "warning",
                "PT_SECRET": "a-pass-through-secret-of-32-chars-or-more",
            ]
                .merging(extra) { _, new in new }
            servers.append(Task { try await runStampede(["serve", "--proxy-config", path, "--port", "\(port)"], environment: environment, timeout: .seconds(600)) })
        }
        defer {
            for server in servers { server.cancel() }
            try? FileManager.default.removeItem(at: directory)
        }
        for port in ports {
            try await waitUntil("the proxy on \(port) answers /healthz", limit: .seconds(60)) {
                (try? await Self.get("http://127.0.0.1:\(port)/healthz").status) == 200
            }
        }
        let result = try await body(Running(upstream: upstream, ports: ports))
        await upstream.stop()
        return result
    }

    static func get(_ url: String, key: String? = nil) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    /// One answer as the openai package saw it.
    struct Answer: Decodable, Sendable {
        var content: String?
        var cache_status: String?
        var source: String?
        var age: String?
        var total_tokens: Int?
        var error: String?
    }

    /// A message as the openai package assembled it (`rich` and `plain` modes).
    struct Rich: Decodable, Sendable, Equatable {
        struct Call: Decodable, Sendable, Equatable {
            var id: String?
            var name: String?
            var arguments: String?
        }
        var content: String?
        var reasoning: String?
        var tool_calls: [Call]
        var finish_reason: String?
        var source: String?
        var reasoning_chunks: Int?
        var content_chunks: Int?
        var reasoning_first: Bool?
    }

    /// Embeddings as the openai package decoded them.
    struct Embedded: Decodable, Sendable {
        var vectors: [[Double]]
        var indexes: [Int]
        var model: String
        var prompt_tokens: Int
        var cache_status: String?
        var source: String?
    }

    /// A streamed answer: its pieces with arrival times, and the proxy's `stampede` field.
    struct Streamed: Decodable, Sendable {
        struct Piece: Decodable, Sendable {
            var t: Double
            /// Wall-clock seconds (to compare two client processes).
            var at: Double
            var text: String
        }
        struct Source: Decodable, Sendable {
            var source: String
            var cache_status: String
        }
        var pieces: [Piece]
        var content: String
        var stampede: Source?
        var total_tokens: Int?
    }

    /// Runs the openai-package driver; decodes its JSON output.
    static func python<T: Decodable>(_ type: T.Type, _ arguments: [String]) async throws -> T {
        let openai = try await runChild("/bin/bash", [repositoryRoot + "/scripts/ensure-openai-python.sh"], timeout: .seconds(300))
        #expect(openai.status == 0, "\(openai.stderr)")
        let run = try await runChild(
            "/usr/bin/env", ["python3", repositoryRoot + "/Tests/ProxyClients/openai_client.py"] + arguments,
            environment: ["PYTHONPATH": openai.stdout.trimmingCharacters(in: .whitespacesAndNewlines)], timeout: .seconds(120)
        )
        guard run.status == 0 else { throw ProxyTestFailure("openai_client.py \(arguments[0]) exited \(run.status): \(run.stderr.suffix(2_000))") }
        return try JSONDecoder().decode(T.self, from: Data(run.stdout.utf8))
    }

    static func curl(_ arguments: [String]) async throws -> ChildRun {
        try await runChild("/usr/bin/env", ["curl", "--silent", "--show-error", "--max-time", "60"] + arguments, timeout: .seconds(90))
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test("openai package: the first request is computed (fwd=miss; stored), the second a hit with Age; the upstream got the proxy's key, never the caller's")
    func completionThenHit() async throws {
        try await withProxy { proxy in
            let first = try await Self.python(Answer.self, ["complete", proxy.baseURL, Self.alphaKey, "What is a stampede?"])
            #expect(first.cache_status == "stampede; fwd=miss; stored")
            #expect(first.source == "computed")
            let second = try await Self.python(Answer.self, ["complete", proxy.baseURL, Self.alphaKey, "What is a stampede?"])
            #expect(second.cache_status == "stampede; hit")
            #expect(second.source == "fresh_hit")
            #expect(second.content != nil && second.content == first.content)
            #expect(second.age.flatMap(Int.init) != nil)
            #expect(second.total_tokens != nil && second.total_tokens == first.total_tokens)
            #expect(proxy.upstream.callCount == 1)
            #expect(proxy.upstream.calls.allSatisfy { $0.authorization == "Bearer \(Self.upstreamKey)" })
        }
    }

    @Test("openai package, stream: the leader's pieces arrive as the upstream sends them; a hit is replayed in several chunks with usage, and both end with the source")
    func streamedCompletions() async throws {
        try await withProxy { proxy in
            let live = try await Self.python(Streamed.self, ["stream", proxy.baseURL, Self.alphaKey, "Stream me"])
            #expect(live.pieces.count >= 3, "\(live.pieces)")
            #expect(live.stampede?.source == "computed")
            #expect(live.total_tokens != nil)
            let replay = try await Self.python(Streamed.self, ["stream", proxy.baseURL, Self.alphaKey, "Stream me"])
            #expect(replay.content == live.content && !live.content.isEmpty)
            #expect(replay.pieces.count >= 2)
            #expect(replay.stampede?.source == "fresh_hit")
            #expect(replay.total_tokens == live.total_tokens)
            #expect(proxy.upstream.callCount == 1)
        }
    }

    @Test("a follower's stream is live: while the upstream's answer is paused after 2 of its 6 pieces, a second client on another proxy process receives a piece; after release both get the whole answer; one upstream call")
    func followersStreamLive() async throws {
        try await withProxy(instances: 2, latency: .milliseconds(600)) { proxy in
            // The upstream pauses after 2 of its 6 pieces until the follower's Python process has
            // written a piece to its progress file. A follower that only got the committed answer
            // receives nothing during the pause, so this waits on an event, never on a time: a
            // loaded machine cannot make it pass or fail.
            proxy.upstream.holdStreams(afterChunks: 2)
            defer { proxy.upstream.releaseStreams() }  // a failed wait must not leave the clients hanging
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("proxy-live-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let leaderProgress = directory.appendingPathComponent("leader.jsonl").path
            let followerProgress = directory.appendingPathComponent("follower.jsonl").path
            /// The text a client has received so far (its progress file holds one JSON string per piece).
            func textSoFar(_ path: String) -> String {
                let lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
                return lines.compactMap { try? JSONDecoder().decode(String.self, from: Data($0.utf8)) }.joined()
            }
            async let leading = Self.python(Streamed.self, ["stream", "http://127.0.0.1:\(proxy.ports[0])/v1", Self.alphaKey, "Live herd", leaderProgress])
            try await waitUntil("the leader's client got a piece and the upstream paused", limit: .seconds(60)) {
                proxy.upstream.heldStreamCount == 1 && !textSoFar(leaderProgress).isEmpty
            }
            async let following = Self.python(Streamed.self, ["stream", "http://127.0.0.1:\(proxy.ports[1])/v1", Self.alphaKey, "Live herd", followerProgress])
            try await waitUntil("the follower's client got a piece while the upstream's answer was paused", limit: .seconds(90)) {
                !textSoFar(followerProgress).isEmpty
            }
            #expect(proxy.upstream.heldStreamCount == 1, "the upstream was still paused when the follower's piece arrived")
            let followerTextDuringPause = textSoFar(followerProgress)
            proxy.upstream.releaseStreams()
            let led = try await leading
            let followed = try await following
            #expect(followed.content == led.content && !led.content.isEmpty)
            // What the follower had during the pause is the start of the answer, not all of it.
            #expect(led.content.hasPrefix(followerTextDuringPause) && followerTextDuringPause.count < led.content.count, "during the pause: \(followerTextDuringPause.debugDescription) of \(led.content.debugDescription)")
            #expect(followed.stampede?.source == "received_from_other_worker")
            #expect(proxy.upstream.callCount == 1)
        }
    }

    /// 32 identical requests: 4 client processes (the `openai` package) of 8 concurrent requests
    /// each, alternating between the first two proxies.
    static func herd(_ proxy: Running, question: String) async throws -> [Answer] {
        try await withThrowingTaskGroup(of: [Answer].self) { group in
            for client in 0..<4 {
                let base = "http://127.0.0.1:\(proxy.ports[client % 2])/v1"
                group.addTask { try await Self.python([Answer].self, ["herd", base, Self.alphaKey, question, "8"]) }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    @Test("a herd of 32 identical requests from 4 client processes, spread over 2 proxy processes on one Redis: exactly 1 upstream call, 32 identical answers")
    func herdAcrossProcesses() async throws {
        try await withProxy(instances: 2, latency: .milliseconds(800)) { proxy in
            let herds = try await Self.herd(proxy, question: "Herd question")
            #expect(herds.count == 32)
            #expect(herds.allSatisfy { $0.error == nil }, "\(herds.compactMap(\.error))")
            #expect(Set(herds.compactMap(\.content)).count == 1)
            #expect(proxy.upstream.callCount == 1)
            let sources = Dictionary(grouping: herds.compactMap(\.source), by: { $0 }).mapValues(\.count)
            #expect(sources["computed"] == 1, "\(sources)")
        }
    }

    @Test("commit_in_background: a herd of 32 identical requests from 4 client processes over 2 proxy processes gets 1 upstream call and 32 identical answers; the leader's says fwd=miss; stored; the answer is then a hit on both proxies")
    func herdWithCommitInBackground() async throws {
        try await withProxy(instances: 2, latency: .milliseconds(800), commitInBackground: true) { proxy in
            let herds = try await Self.herd(proxy, question: "Herd question in the background")
            #expect(herds.count == 32)
            #expect(herds.allSatisfy { $0.error == nil }, "\(herds.compactMap(\.error))")
            #expect(Set(herds.compactMap(\.content)).count == 1)
            #expect(proxy.upstream.callCount == 1)
            let leaders = herds.filter { $0.source == "computed" }
            #expect(leaders.count == 1)
            #expect(leaders.first?.cache_status == "stampede; fwd=miss; stored")
            // Every answer was returned after the store was sent; the store has landed by the time
            // the other proxy's followers were woken (they are woken by its commit notice).
            for port in proxy.ports {
                let again = try await Self.python(Answer.self, ["complete", "http://127.0.0.1:\(port)/v1", Self.alphaKey, "Herd question in the background"])
                #expect(again.cache_status == "stampede; hit", "proxy on \(port): \(again.cache_status ?? "none")")
                #expect(again.content == leaders.first?.content)
                // Both answered a hit, so neither still holds a value whose commit is pending.
                let metrics = try await Self.get("http://127.0.0.1:\(port)/metrics")
                let pending = metrics.body.split(separator: "\n").filter { $0.hasPrefix("stampede_cache_pending_commits{") }
                #expect(!pending.isEmpty, "stampede_cache_pending_commits missing from /metrics")
                #expect(pending.allSatisfy { $0.hasSuffix(" 0") || $0.hasSuffix(" 0.0") }, "\(pending)")
            }
            #expect(proxy.upstream.callCount == 1)
        }
    }

    @Test("curl: 401 unknown key, 400 malformed JSON, 403 model not allowed, 413 oversized body, 504 only-if-cached miss — all OpenAI-shaped; no-cache calls again; tenants never share answers")
    func errorsControlsAndTenants() async throws {
        try await withProxy { proxy in
            let url = proxy.baseURL + "/chat/completions"
            let body = #"{"model":"sim-model","messages":[{"role":"user","content":"Tenant question"}]}"#
            func post(_ key: String, _ body: String, _ headers: [String] = []) async throws -> (status: Int, body: String, headers: String) {
                // The body goes through a file: a 1 MB body does not fit in an argument list.
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("proxy-body-\(UUID().uuidString).json")
                try Data(body.utf8).write(to: file)
                defer { try? FileManager.default.removeItem(at: file) }
                var arguments = ["-D", "-", "-o", "/dev/stdout", "-X", "POST", url, "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(key)", "--data-binary", "@" + file.path]
                for header in headers { arguments += ["-H", header] }
                let run = try await Self.curl(arguments)
                let parts = run.stdout.components(separatedBy: "\r\n\r\n")
                let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, parts.dropFirst().joined(separator: "\r\n\r\n"), parts[0].lowercased())
            }
            let unknown = try await post("sk-not-a-key", body)
            #expect(unknown.status == 401)
            #expect(unknown.body.contains(#""code":"invalid_api_key""#) && !unknown.body.contains("sk-not-a-key"))
            let malformed = try await post(Self.alphaKey, "{not json")
            #expect(malformed.status == 400 && malformed.body.contains(#""type":"invalid_request_error""#), "\(malformed.body)")
            let notAllowed = try await post(Self.narrowKey, body)
            #expect(notAllowed.status == 403 && notAllowed.body.contains(#""code":"model_not_allowed""#))
            let huge = try await post(Self.alphaKey, #"{"model":"sim-model","messages":[{"role":"user","content":""# + String(repeating: "x", count: 1_100_000) + #""}]}"#)
            #expect(huge.status == 413, "\(huge.body.prefix(300))")
            let onlyCachedMiss = try await post(Self.alphaKey, body, ["Cache-Control: only-if-cached"])
            #expect(onlyCachedMiss.status == 504 && onlyCachedMiss.body.contains(#""code":"only_if_cached""#))
            #expect(proxy.upstream.callCount == 0)

            let computed = try await post(Self.alphaKey, body)
            #expect(computed.status == 200 && computed.headers.contains("cache-status: stampede; fwd=miss; stored"))
            let onlyCachedHit = try await post(Self.alphaKey, body, ["Cache-Control: only-if-cached"])
            #expect(onlyCachedHit.status == 200 && onlyCachedHit.headers.contains("cache-status: stampede; hit"))
            #expect(!onlyCachedHit.headers.contains("alpha"), "no header reveals the namespace or the key")
            let forced = try await post(Self.alphaKey, body, ["Cache-Control: no-cache"])
            #expect(forced.headers.contains("cache-status: stampede; fwd=request; stored"), "\(forced.headers)")
            let liteLLMStyle = try await post(Self.alphaKey, #"{"model":"sim-model","messages":[{"role":"user","content":"Tenant question"}],"cache":{"no-cache":true}}"#)
            #expect(liteLLMStyle.headers.contains("fwd=request"), "the body's cache object means the same as the header")
            #expect(proxy.upstream.callCount == 3)
            // The other tenant asking the same question never sees alpha's answer.
            let beta = try await post(Self.betaKey, body)
            #expect(beta.headers.contains("cache-status: stampede; fwd=miss; stored"))
            #expect(proxy.upstream.callCount == 4)
            // The chat route is answered without the router (ProxyResponder); its other spellings
            // go through the router to the same endpoint, and other methods get the router's answer.
            for path in ["/chat/completions", "/v1/chat/completions?from=test"] {
                var arguments = ["-D", "-", "-o", "/dev/null", "-X", "POST", proxy.origin + path, "-H", "Content-Type: application/json"]
                arguments += ["-H", "Authorization: Bearer \(Self.betaKey)", "--data-binary", body]
                let headers = try await Self.curl(arguments).stdout.lowercased()
                #expect(headers.hasPrefix("http/1.1 200") && headers.contains("cache-status: stampede; hit"), "\(path): \(headers)")
            }
            #expect(proxy.upstream.callCount == 4)
            let getFast = try await Self.get(proxy.origin + "/v1/chat/completions", key: Self.betaKey)
            let getRouted = try await Self.get(proxy.origin + "/chat/completions", key: Self.betaKey)
            #expect(getFast.status == getRouted.status)
            #expect(getFast.status == 404 || getFast.status == 405, "\(getFast.status)")
        }
    }

    @Test("openai package's own stream accumulator: a streamed tool call is rebuilt exactly as the non-streamed one; reasoning streams before the text, live and replayed from a hit, and equals the stored reasoning")
    func reasoningAndToolCallsSurvive() async throws {
        try await withProxy { proxy in
            let streamedCall = try await Self.python(Rich.self, ["rich", proxy.baseURL, Self.alphaKey, "tool:Find the lease docs"])
            let plainCall = try await Self.python(Rich.self, ["plain", proxy.baseURL, Self.alphaKey, "tool:Find the lease docs"])
            #expect(streamedCall.finish_reason == "tool_calls")
            #expect(streamedCall.tool_calls.count == 1)
            #expect(streamedCall.tool_calls.first?.name == "search_docs")
            #expect(streamedCall.tool_calls.first?.arguments == #"{"query":"tool:Find the lease docs"}"#)
            #expect(streamedCall.tool_calls == plainCall.tool_calls)
            // Requests offering tools are not cached: both asked the upstream.
            #expect(streamedCall.source == "computed_not_stored" && plainCall.source == "computed_not_stored")

            let live = try await Self.python(Rich.self, ["rich", proxy.baseURL, Self.alphaKey, "Why fence the lock?", "sim-reasoner"])
            let reasoning = try #require(live.reasoning)
            #expect(reasoning.hasPrefix("Thinking about"))
            #expect((live.reasoning_chunks ?? 0) >= 2 && live.reasoning_first == true)
            #expect(live.source == "computed")
            let replayed = try await Self.python(Rich.self, ["rich", proxy.baseURL, Self.alphaKey, "Why fence the lock?", "sim-reasoner"])
            #expect(replayed.source == "fresh_hit")
            #expect(replayed.reasoning == reasoning && replayed.content == live.content)
            #expect((replayed.reasoning_chunks ?? 0) >= 1 && replayed.reasoning_first == true)
            let plain = try await Self.python(Rich.self, ["plain", proxy.baseURL, Self.alphaKey, "Why fence the lock?", "sim-reasoner"])
            #expect(plain.source == "fresh_hit" && plain.reasoning == reasoning)
            #expect(proxy.upstream.callCount == 3)
        }
    }

    @Test("curl: min-fresh asks again when the stored answer is not fresh long enough (streams too); stale-if-error serves a stale answer on an upstream failure only within its bound")
    func minFreshAndStaleIfError() async throws {
        try await withProxy { proxy in
            let url = proxy.baseURL + "/chat/completions"
            func post(_ body: String, _ headers: [String] = []) async throws -> (status: Int, body: String, headers: String) {
                var arguments = ["-D", "-", "-o", "/dev/stdout", "-X", "POST", url, "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(Self.alphaKey)", "--data-binary", body]
                for header in headers { arguments += ["-H", header] }
                let run = try await Self.curl(arguments)
                let parts = run.stdout.components(separatedBy: "\r\n\r\n")
                let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, parts.dropFirst().joined(separator: "\r\n\r\n"), parts[0].lowercased())
            }
            // Stored fresh for 60 s (the proxy's freshFor).
            let body = #"{"model":"sim-model","messages":[{"role":"user","content":"Freshness question"}]}"#
            #expect(try await post(body).headers.contains("cache-status: stampede; fwd=miss; stored"))
            let freshEnough = try await post(body, ["Cache-Control: min-fresh=30"])
            #expect(freshEnough.headers.contains("cache-status: stampede; hit"), "\(freshEnough.headers)")
            let notFreshEnough = try await post(body, ["Cache-Control: min-fresh=120"])
            #expect(notFreshEnough.headers.contains("cache-status: stampede; fwd=request; stored"), "\(notFreshEnough.headers)")
            #expect(proxy.upstream.callCount == 2)
            let streamBody = #"{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"Freshness question"}]}"#
            let streamedHit = try await post(streamBody, ["Cache-Control: min-fresh=30"])
            #expect(streamedHit.body.contains(#""cache_status":"stampede; hit""#), "\(streamedHit.body.suffix(400))")
            let streamedAgain = try await post(streamBody, ["Cache-Control: min-fresh=120"])
            #expect(streamedAgain.body.contains(#""cache_status":"stampede; fwd=request; stored""#), "\(streamedAgain.body.suffix(400))")
            #expect(proxy.upstream.callCount == 3)

            // An answer fresh for 0.2 s, then stale; the upstream then fails (500, not retried).
            let shortLived = #"{"model":"sim-model","messages":[{"role":"user","content":"Short-lived question"}],"cache":{"ttl":0.2}}"#
            #expect(try await post(shortLived).status == 200)
            let stored = #"{"model":"sim-model","messages":[{"role":"user","content":"Short-lived question"}]}"#
            try await waitUntil("the short-lived answer is stale", limit: .seconds(30)) {
                try await post(stored, ["Cache-Control: only-if-cached"]).status == 504
            }
            proxy.upstream.enqueue([.status(500), .status(500)])
            let noStaleOnError = try await post(stored, ["Cache-Control: max-stale=0, stale-if-error=0"])
            #expect(noStaleOnError.status == 500, "\(noStaleOnError.status) \(noStaleOnError.body)")
            #expect(noStaleOnError.body.contains(#""error""#))
            let withinBound = try await post(stored, ["Cache-Control: max-stale=0, stale-if-error=60"])
            #expect(withinBound.status == 200, "\(withinBound.body)")
            #expect(withinBound.headers.contains("cache-status: stampede; hit; detail=stale-if-error"), "\(withinBound.headers)")
            #expect(proxy.upstream.callCount == 6)
        }
    }

    @Test("POST /v1/embeddings: the openai package's base64 request is computed once, then a hit; a float request for the same input is the same hit with the same float32 values as the upstream's; tenants don't share; bad input is an OpenAI-shaped 400")
    func embeddingsAreCached() async throws {
        try await withProxy { proxy in
            let first = try await Self.python(Embedded.self, ["embed", proxy.baseURL, Self.alphaKey, "lease docs|fence docs"])
            #expect(first.source == "computed" && first.cache_status == "stampede; fwd=miss; stored")
            #expect(first.vectors.count == 2 && first.vectors.allSatisfy { $0.count == 8 } && first.indexes == [0, 1])
            let second = try await Self.python(Embedded.self, ["embed", proxy.baseURL, Self.alphaKey, "lease docs|fence docs"])
            #expect(second.source == "fresh_hit" && second.cache_status == "stampede; hit")
            #expect(second.vectors == first.vectors && second.prompt_tokens == first.prompt_tokens)
            let embeddingCalls = { proxy.upstream.calls.filter { $0.endpoint == "/v1/embeddings" } }
            #expect(embeddingCalls().count == 1)
            #expect(embeddingCalls().allSatisfy { $0.authorization == "Bearer \(Self.upstreamKey)" })

            // The same input as JSON numbers, through the proxy (a hit) and from the upstream directly.
            let body = #"{"model":"sim-embed","input":["lease docs","fence docs"],"encoding_format":"float"}"#
            let viaProxy = try await Self.curl(["-D", "/dev/stderr", "-X", "POST", proxy.baseURL + "/embeddings", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(Self.alphaKey)", "--data-binary", body])
            #expect(viaProxy.stderr.lowercased().contains("cache-status: stampede; hit"), "\(viaProxy.stderr)")
            let direct = try await Self.curl(["-X", "POST", proxy.upstream.baseURL + "/embeddings", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(Self.upstreamKey)", "--data-binary", body])
            func floats(_ json: String) throws -> [[Float]] {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
                let data = try #require(object["data"] as? [[String: Any]])
                return data.map { ($0["embedding"] as? [Double] ?? []).map(Float.init) }
            }
            let upstreamVectors = try floats(direct.stdout)
            #expect(try floats(viaProxy.stdout) == upstreamVectors)
            #expect(first.vectors.map { $0.map(Float.init) } == upstreamVectors, "base64 float32 == the upstream's float32")
            #expect(embeddingCalls().count == 2)  // the direct call

            let beta = try await Self.curl(["-D", "/dev/stderr", "-X", "POST", proxy.baseURL + "/embeddings", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(Self.betaKey)", "--data-binary", body])
            #expect(beta.stderr.lowercased().contains("cache-status: stampede; fwd=miss; stored"))
            #expect(embeddingCalls().count == 3)
            let bad = try await Self.curl(["-w", "\n%{http_code}", "-X", "POST", proxy.baseURL + "/embeddings", "-H", "Authorization: Bearer \(Self.alphaKey)", "--data-binary", #"{"model":"sim-embed","input":[]}"#])
            #expect(bad.stdout.hasSuffix("\n400") && bad.stdout.contains(#""param":"input""#), "\(bad.stdout)")
            #expect(embeddingCalls().count == 3)
        }
    }

    @Test("the Grafana dashboard (scripts/grafana/stampede-dashboard.json) queries only metric names /metrics exports, with the labels it filters and groups by")
    func dashboardMatchesMetrics() async throws {
        let dashboardPath = Self.repositoryRoot + "/scripts/grafana/stampede-dashboard.json"
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dashboardPath))) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(panels.count >= 10 && expressions.count >= panels.count)
        let titles = panels.compactMap { $0["title"] as? String }
        for required in ["Hit ratio", "Answers by source", "Upstream calls avoided", "Money saved", "Follower wait", "Lock takeovers", "Redis errors"] {
            #expect(titles.contains(required), "no panel '\(required)'")
        }
        try await withProxy { proxy in
            // Traffic that makes every metric exist: a miss, a hit (money saved), a streamed answer.
            _ = try await Self.python(Answer.self, ["complete", proxy.baseURL, Self.alphaKey, "Dashboard question"])
            _ = try await Self.python(Answer.self, ["complete", proxy.baseURL, Self.alphaKey, "Dashboard question"])
            _ = try await Self.python(Streamed.self, ["stream", proxy.baseURL, Self.alphaKey, "Dashboard stream"])
            var exported: [String: Set<String>] = [:]
            var text = ""
            try await waitUntil("the accounting flush exports money saved", limit: .seconds(30)) {
                text = try await Self.get(proxy.origin + "/metrics").body
                exported = Self.metricLabels(text)
                return exported["llmcache_money_saved_usd_total"] != nil
            }
            // A stream is counted when it ends, by its answer's real source.
            #expect(!text.contains(#"cache="stream""#) && !text.contains("recorded later"))
            let requestLines = text.split(separator: "\n").filter { $0.hasPrefix("stampede_proxy_requests_total{") }
            let computed = requestLines.filter { $0.contains(#"cache="computed""#) && $0.contains(#"route="/v1/chat/completions""#) && $0.contains(#"status="200""#) }
            #expect(computed.count == 1 && computed.first?.hasSuffix(" 2") == true, "one miss and one stream, both computed: \(requestLines)")
            let metricPattern = /\b((?:stampede|llmcache|redis)_[a-z0-9_]+)\b/
            let byPattern = /by \(([a-z_, ]+)\)/
            let selectorPattern = /([a-z_]+)=~/
            for expression in expressions {
                let metrics = expression.matches(of: metricPattern).map { String($0.1) }
                #expect(!metrics.isEmpty, "no metric in \(expression)")
                var labels = Set(expression.matches(of: selectorPattern).map { String($0.1) })
                for match in expression.matches(of: byPattern) {
                    labels.formUnion(match.1.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                }
                for metric in metrics {
                    guard let present = exported[metric] else {
                        Issue.record("\(metric) (in \(expression)) is not exported by /metrics")
                        continue
                    }
                    for label in labels where label != "le" || metric.hasSuffix("_bucket") {
                        #expect(present.contains(label), "\(metric) has no label '\(label)' (in \(expression)); it has \(present.sorted())")
                    }
                }
            }
        }
    }

    /// Metric name → label names, from Prometheus text.
    static func metricLabels(_ text: String) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            var labels = result[name] ?? []
            if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
                for match in line[open..<close].matches(of: /([a-zA-Z_][a-zA-Z0-9_]*)="/) { labels.insert(String(match.1)) }
            }
            result[name] = labels
        }
        return result
    }

    @Test("OTLP/HTTP export (swift-otel): a request with a traceparent is traced in that trace, from the server span through the cache's compute and commit to the upstream call, with the fence token the upstream received and no prompt text")
    func tracesExportedByOTLP() async throws {
        let collectorPort = try ServerSupport.pickFreePort()
        let spansFile = FileManager.default.temporaryDirectory.appendingPathComponent("otlp-\(UUID().uuidString).jsonl").path
        let collector = Task { try await runChild("/usr/bin/env", ["python3", Self.repositoryRoot + "/Tests/ProxyClients/otlp_collector.py", "\(collectorPort)", spansFile], timeout: .seconds(600)) }
        defer {
            collector.cancel()
            try? FileManager.default.removeItem(atPath: spansFile)
        }
        let environment = [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(collectorPort)", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "stampede-proxy-test",
        ]
        try await withProxy(environment: environment) { proxy in
            let traceID = (0..<32).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
            let body = #"{"model":"sim-model","messages":[{"role":"user","content":"Traced secret question"}]}"#
            let run = try await Self.curl(["-X", "POST", proxy.baseURL + "/chat/completions", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(Self.alphaKey)", "-H", "traceparent: 00-\(traceID)-00f067aa0ba902b7-01", "--data-binary", body])
            #expect(run.stdout.contains("chat.completion"), "\(run.stdout)")
            struct Exported { var name: String; var traceID: String; var attributes: [String: String] }
            var spans: [Exported] = []
            var serviceNames: Set<String> = []
            try await waitUntil("the proxy exported the request's spans", limit: .seconds(60)) {
                guard let text = try? String(contentsOfFile: spansFile, encoding: .utf8) else { return false }
                spans = []
                for line in text.split(separator: "\n") {
                    guard let document = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                    for resource in document["resourceSpans"] as? [[String: Any]] ?? [] {
                        for attribute in (resource["resource"] as? [String: Any])?["attributes"] as? [[String: Any]] ?? [] where attribute["key"] as? String == "service.name" {
                            if let value = (attribute["value"] as? [String: Any])?["stringValue"] as? String { serviceNames.insert(value) }
                        }
                        for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
                            for span in scope["spans"] as? [[String: Any]] ?? [] {
                                var attributes: [String: String] = [:]
                                for attribute in span["attributes"] as? [[String: Any]] ?? [] {
                                    guard let key = attribute["key"] as? String, let value = attribute["value"] as? [String: Any], let first = value.values.first else { continue }
                                    attributes[key] = "\(first)"
                                }
                                spans.append(Exported(name: span["name"] as? String ?? "", traceID: (span["traceId"] as? String ?? "").lowercased(), attributes: attributes))
                            }
                        }
                    }
                }
                return Set(spans.map(\.name)).isSuperset(of: ["llm.request", "stampede.cache.get", "stampede.cache.compute", "stampede.cache.commit", "llm.upstream"])
            }
            #expect(serviceNames.contains("stampede-proxy-test"))
            // OTLP/JSON writes trace ids as hex (the OTLP spec), or as base64 (protobuf's JSON mapping).
            let base64 = Data(stride(from: 0, to: 32, by: 2).map { UInt8(traceID.dropFirst($0).prefix(2), radix: 16)! }).base64EncodedString().lowercased()
            let ours = spans.filter { $0.traceID == traceID || $0.traceID == base64 }
            #expect(Set(ours.map(\.name)).isSuperset(of: ["llm.request", "stampede.cache.get", "stampede.cache.compute", "stampede.cache.commit", "llm.upstream"]), "\(spans.map { "\($0.name) \($0.traceID)" })")
            #expect(ours.count >= 6, "the server span too: \(ours.map(\.name))")
            let token = try #require(proxy.upstream.calls.first?.fenceToken)
            #expect(ours.first { $0.name == "stampede.cache.compute" }?.attributes["stampede.fence_token"] == token)
            #expect(ours.first { $0.name == "llm.upstream" }?.attributes["stampede.fence_token"] == token)
            #expect(!spans.contains { $0.attributes.values.contains { $0.contains("secret question") } })
        }
    }

    @Test("pass-through: callers with their own upstream keys each get their own namespace (same key: a hit; another key: a miss), their key reaches the upstream, and no Redis key holds it; virtual keys still use the proxy's key")
    func passThroughKeys() async throws {
        try await withProxy(passThrough: true) { proxy in
            let first = try await Self.python(Answer.self, ["complete", proxy.baseURL, "sk-caller-one", "Pass-through question"])
            #expect(first.source == "computed")
            #expect(proxy.upstream.calls.last?.authorization == "Bearer sk-caller-one")
            let again = try await Self.python(Answer.self, ["complete", proxy.baseURL, "sk-caller-one", "Pass-through question"])
            #expect(again.source == "fresh_hit" && again.content == first.content)
            let other = try await Self.python(Answer.self, ["complete", proxy.baseURL, "sk-caller-two", "Pass-through question"])
            #expect(other.source == "computed", "another key never reads the first key's answers")
            #expect(proxy.upstream.calls.last?.authorization == "Bearer sk-caller-two")
            let virtual = try await Self.python(Answer.self, ["complete", proxy.baseURL, Self.alphaKey, "Pass-through question"])
            #expect(virtual.source == "computed")
            #expect(proxy.upstream.calls.last?.authorization == "Bearer \(Self.upstreamKey)")
            #expect(proxy.upstream.callCount == 3)
            let redis = try makeClient(try TestRedis.sharedURL, poolSize: 1)
            let leaked = try await redis.send("KEYS", "*sk-caller*").array ?? []
            #expect(leaked.isEmpty)
            await redis.close()
            // Every pass-through namespace shares one metric label: the series stay bounded.
            let metrics = try await Self.get(proxy.origin + "/metrics").body
            #expect(!metrics.contains(#"namespace="pt-"#))
            #expect(metrics.contains(#"stampede_cache_requests_total{namespace="pass-through""#) || metrics.contains(#"namespace="pass-through",source="#), "\(metrics.split(separator: "\n").filter { $0.hasPrefix("stampede_cache_requests_total") }.prefix(6))")
        }
    }

    @Test("GET /v1/models passes through with the upstream's key; /readyz is ready; /metrics exports the proxy's, the cache's and the client's metrics in Prometheus text")
    func modelsReadinessAndMetrics() async throws {
        try await withProxy { proxy in
            let models = try await Self.get(proxy.baseURL + "/models", key: Self.alphaKey)
            #expect(models.status == 200 && models.body.contains(#""id":"sim-model""#), "\(models.body)")
            #expect(try await Self.get(proxy.baseURL + "/models", key: "wrong").status == 401)
            let ready = try await Self.get(proxy.origin + "/readyz")
            #expect(ready.status == 200, "\(ready.body)")
            _ = try await Self.python(Answer.self, ["complete", proxy.baseURL, Self.alphaKey, "Count me"])
            let metrics = try await Self.get(proxy.origin + "/metrics")
            #expect(metrics.status == 200)
            for name in ["stampede_proxy_requests_total", "stampede_proxy_request_duration_seconds", "redis_commands_total", "stampede_cache_requests_total", "llmcache_"] {
                #expect(metrics.body.contains(name), "\(name) missing from /metrics")
            }
            #expect(metrics.body.contains(#"route="/v1/chat/completions""#))
        }
    }
}

struct ProxyTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
