import Foundation
@testable import LLMCache
import Logging
import RedisClient
import RedisTestSupport
import SimulatedLLM
import StampedeCache
import Synchronization
import Testing

private let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A worker: its own Redis connections and LLMCache, calling the simulated upstream.
private func makeWorker(_ url: String, server: SimulatedLLMServer, namespace: String, id: String, policy: CachePolicy? = nil, cacheability: CacheabilityPolicy = .init(), gate: TestGate? = nil) async throws -> (RedisClient, LLMCache) {
    let redis = try makeClient(url, poolSize: 1)
    let client = OpenAIClient(configuration: OpenAIConfiguration(baseURL: server.baseURL, apiKey: "k", maxRetries: 0, workerID: id), logger: quiet)
    let upstream: any ChatCompletionUpstream = gate.map { GatedUpstream(base: client, gate: $0) } ?? client
    let configuration = LLMCacheConfiguration(
        namespace: namespace,
        policy: policy ?? CachePolicy(freshFor: .seconds(60), staleFor: .seconds(60), computeTimeout: .seconds(5), lockTTL: .seconds(7), ttlJitter: 0),
        prices: PriceTable(models: ["sim": .init(inputPerMillion: 1_000, outputPerMillion: 2_000)]),
        cacheability: cacheability,
        accountingFlushInterval: .milliseconds(100)
    )
    return (redis, try LLMCache(redis: redis, upstream: upstream, configuration: configuration, logger: quiet))
}

/// An upstream whose calls wait at a gate before going to `base`.
private struct GatedUpstream: ChatCompletionUpstream {
    let base: any ChatCompletionUpstream
    let gate: TestGate

    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatCompletion {
        try await gate.pass()
        return try await base.complete(request, deadline: deadline)
    }

    func stream(_ request: ChatRequest, deadline: ContinuousClock.Instant, onDelta: @escaping @Sendable (ChatDelta) -> Void) async throws -> ChatCompletion {
        try await gate.pass()
        return try await base.stream(request, deadline: deadline, onDelta: onDelta)
    }
}

private func ask(_ text: String, maxTokens: Int? = nil) -> ChatRequest {
    ChatRequest(model: "sim", messages: [.system("Be brief."), .user(text)], maxTokens: maxTokens)
}

private func namespace() -> String { "llm\(UInt32.random(in: 0..<UInt32.max))" }

@Suite("LLMCache end to end, against real Redis and the simulated upstream", .sharedRedis)
struct LLMCacheTests {
    @Test("3 LLMCache workers x 30 concurrent callers on one prompt -> the upstream counts exactly 1 request")
    func fleetMakesOneUpstreamCall() async throws {
        let url = try TestRedis.sharedURL
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(300))), apiKey: "k")
        let ns = namespace()
        var workers: [(RedisClient, LLMCache)] = []
        for index in 0..<3 { workers.append(try await makeWorker(url, server: server, namespace: ns, id: "w\(index)")) }
        let results = try await withThrowingTaskGroup(of: LLMResult.self) { group in
            for (_, llm) in workers {
                for _ in 0..<30 { group.addTask { try await llm.complete(ask("Why do caches stampede?")) } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(server.callCount == 1)
        #expect(results.count == 90)
        #expect(Set(results.map(\.completion.content)).count == 1)
        #expect(results.filter(\.calledUpstream).count == 1)
        // The upstream saw the fence token of the lock the call ran under.
        #expect(server.calls.first?.fenceToken.flatMap { Int($0) } ?? 0 >= 1)
        // Accounting adds up across the fleet: 90 requests, 1 upstream call, 89 answered without one.
        // Each worker flushes its counters to Redis; then one reads the fleet-wide sum.
        for (_, llm) in workers { _ = try await llm.fleetAccounting(namespaces: [ns]) }
        let total = try await workers[0].1.fleetAccounting(namespaces: [ns]).total
        #expect(total.requests == 90)
        #expect(total.upstreamCalls == 1)
        #expect(total.freshHits + total.staleHits + total.receivedFromOtherWorkers == 89)
        let usage = try #require(results.first?.completion.usage)
        #expect(total.promptTokensServedFromCache == 89 * usage.promptTokens)
        #expect(abs(total.moneySaved - 89 * (Double(usage.promptTokens) * 1_000 + Double(usage.completionTokens) * 2_000) / 1e6) < 1e-6)
        for (redis, llm) in workers {
            await llm.close()
            await redis.close()
        }
        await server.stop()
    }

    @Test("a truncated answer (finish_reason length) is returned but not cached; the next request calls the upstream again")
    func truncatedAnswersAreNotCached() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let (redis, llm) = try await makeWorker(try TestRedis.sharedURL, server: server, namespace: namespace(), id: "w")
        let first = try await llm.complete(ask("Tell me everything.", maxTokens: 3))
        #expect(first.completion.finishReason == "length")
        #expect(first.notCachedBecause?.contains("max_tokens") == true)
        let second = try await llm.complete(ask("Tell me everything.", maxTokens: 3))
        #expect(second.calledUpstream)
        #expect(server.callCount == 2)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("requests with tools bypass the cache by default; a custom rule can exclude more")
    func cacheabilityRules() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let rule = CacheabilityPolicy(requestRule: { request in !request.messages.contains { $0.text.contains("user-42") } })
        let (redis, llm) = try await makeWorker(try TestRedis.sharedURL, server: server, namespace: namespace(), id: "w", cacheability: rule)
        var withTools = ask("What's the weather?")
        withTools.tools = .array([.object(["type": "function", "function": .object(["name": "weather"])])])
        for _ in 0..<2 { #expect(try await llm.complete(withTools).notCachedBecause == "the request offers tools") }
        for _ in 0..<2 { #expect(try await llm.complete(ask("Orders of user-42?")).notCachedBecause == "a custom rule excluded the request") }
        #expect(server.callCount == 4)
        #expect(try await llm.complete(ask("General question")).source == .computed)
        #expect(try await llm.complete(ask("General question")).source == .freshHit)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("noCache asks the upstream again and stores; noStore does not store; ttl and tenants apply")
    func cacheControls() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let (redis, llm) = try await makeWorker(try TestRedis.sharedURL, server: server, namespace: namespace(), id: "w")
        _ = try await llm.complete(ask("q1"))
        #expect(try await llm.complete(ask("q1"), options: .init(noCache: true)).calledUpstream)
        #expect(try await llm.complete(ask("q1")).source == .freshHit)
        #expect(server.callCount == 2)
        #expect(try await llm.complete(ask("q2"), options: .init(noStore: true)).source == .computedNotStored)
        #expect(try await llm.complete(ask("q2")).source == .computed)
        #expect(server.callCount == 4)
        // Tenants never share answers.
        #expect(try await llm.complete(ask("q1"), options: .init(namespace: "tenant-b-\(UInt16.random(in: 0...9999))")).calledUpstream)
        // ttl: a 200 ms answer is stale after 300 ms.
        _ = try await llm.complete(ask("q3"), options: .init(ttl: .milliseconds(200)))
        try await Task.sleep(for: .milliseconds(300))
        let stale = try await llm.complete(ask("q3"))
        #expect(stale.source == .staleHit(.startedHere))
        // maxStale: this caller refuses stale answers and waits for the refresh.
        _ = try await llm.complete(ask("q4"), options: .init(ttl: .milliseconds(100)))
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await llm.complete(ask("q4"), options: .init(maxStale: .zero)).calledUpstream)
        await llm.close(); await redis.close(); await server.stop()
    }

    @Test("streaming: the caller that calls the upstream gets the pieces live; others get the final text; a cut stream is not cached")
    func streaming() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(20)), streamChunks: 5), apiKey: "k")
        let url = try TestRedis.sharedURL
        let ns = namespace()
        let gate = TestGate()
        let (redisA, leader) = try await makeWorker(url, server: server, namespace: ns, id: "a", policy: patientPolicy, gate: gate)
        let (redisB, follower) = try await makeWorker(url, server: server, namespace: ns, id: "b", policy: patientPolicy)
        func collect(_ stream: AsyncThrowingStream<ChatStreamEvent, any Error>) async throws -> (deltas: [String], result: LLMResult?) {
            var deltas: [String] = []
            var result: LLMResult?
            for try await event in stream {
                switch event {
                case .delta(let piece): deltas.append(piece)
                case .reasoning: break
                case .completed(let final): result = final
                }
            }
            return (deltas, result)
        }
        async let leading = collect(leader.stream(ask("Stream me")))
        // The leader holds the lock once its upstream call reached the gate; the follower asks, and
        // once it waits for the leader, the gate opens.
        let deadline = ContinuousClock.now + .seconds(20)
        while gate.arrived == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        async let following = collect(follower.stream(ask("Stream me")))
        let followerCache = try follower.cache(for: ns)
        while followerCache.diagnostics.followerWaits == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        gate.open()
        let followed = try await following
        let led = try await leading
        #expect(led.deltas.count == 5)
        #expect(led.deltas.joined() == led.result?.completion.content)
        // The follower read the leader's pieces from its live stream (or, if it fell behind, got
        // the rest with the final answer): the same text, never repeated.
        #expect(followed.deltas.joined() == led.result?.completion.content)
        #expect(followed.result?.source == .receivedFromOtherWorker)
        #expect(server.callCount == 1)
        // A stream cut off mid-way reaches the caller as an error and is not cached.
        server.enqueue([.cutStream(afterChunks: 2)])
        await #expect(throws: UpstreamError.self) { _ = try await collect(leader.stream(ask("Cut me"))) }
        #expect(try await leader.complete(ask("Cut me")).calledUpstream)
        await leader.close(); await follower.close(); await redisA.close(); await redisB.close(); await server.stop()
    }

    @Test("a caller that joins a streamed computation in the same process also gets its pieces live (the first while the upstream's answer is paused after 2 of its 8 pieces); one upstream call")
    func inProcessJoinersStreamLive() async throws {
        try await followLive(sameWorker: true)
    }

    @Test("a caller waiting on another worker's streamed computation gets its pieces live from the start (the first while the upstream's answer is paused after 2 of its 8 pieces), then the rest; one upstream call")
    func followersStreamLive() async throws {
        try await followLive(sameWorker: false)
    }

    @Test("four callers in one process following another worker's streamed computation all get its pieces live, through one shared reader of its stream; one upstream call")
    func callersInOneProcessShareOneLiveReader() async throws {
        // The upstream pauses after 2 of its 8 pieces until every follower has received a piece
        // (an event, not a time, so a loaded machine cannot decide the outcome).
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(400)), streamChunks: 8), apiKey: "k")
        server.holdStreams(afterChunks: 2)
        let url = try TestRedis.sharedURL
        let ns = namespace()
        let (redisA, leader) = try await makeWorker(url, server: server, namespace: ns, id: "a", policy: patientPolicy)
        let (redisB, other) = try await makeWorker(url, server: server, namespace: ns, id: "b", policy: patientPolicy)
        let readersSeen = SeenCounts()
        let followerPieces = (0..<4).map { _ in PieceCount() }
        @Sendable func collect(_ stream: AsyncThrowingStream<ChatStreamEvent, any Error>, counting: PieceCount?) async throws -> (text: String, result: LLMResult?) {
            var text = ""
            var result: LLMResult?
            for try await event in stream {
                switch event {
                case .delta(let piece):
                    text += piece
                    if let counting {
                        counting.add()
                        readersSeen.insert(other.liveReaders.count)
                    }
                case .reasoning: break
                case .completed(let final): result = final
                }
            }
            return (text, result)
        }
        async let leading = collect(leader.stream(ask("Shared live stream")), counting: nil)
        try await waitUntil("the leader's upstream call started") { server.callCount == 1 }
        async let following = withThrowingTaskGroup(of: (text: String, result: LLMResult?).self) { group in
            for counting in followerPieces { group.addTask { try await collect(other.stream(ask("Shared live stream")), counting: counting) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await waitUntil("each of the 4 followers got a piece while the upstream's answer was paused after 2 of its 8", limit: .seconds(60)) {
            server.heldStreamCount == 1 && followerPieces.allSatisfy { $0.value >= 1 }
        }
        let piecesDuringPause = followerPieces.map(\.value)
        server.releaseStreams()
        let led = try await leading
        let followers = try await following
        let content = try #require(led.result?.completion.content)
        #expect(piecesDuringPause.allSatisfy { (1...2).contains($0) }, "pieces per follower during the pause: \(piecesDuringPause)")
        #expect(followers.count == 4)
        for follower in followers {
            #expect(follower.text == content)
        }
        #expect(readersSeen.values == [1], "one shared reader while the pieces arrived: \(readersSeen.values)")
        #expect(other.liveReaders.count == 0, "the reader is gone once everyone stopped following")
        #expect(server.callCount == 1)
        await leader.close(); await other.close(); await redisA.close(); await redisB.close(); await server.stop()
    }

    @Test("on a Redis Cluster, a follower in another worker reads the leader's stream live from the primary serving its slot (three entries, whichever node each lands on); one upstream call each")
    func followersStreamLiveOnCluster() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            for prompt in ["Live on a cluster, one", "Live on a cluster, two", "Live on a cluster, three"] {
                try await followLive(sameWorker: false, url: cluster.url, prompt: prompt)
            }
        }
    }

    private func followLive(sameWorker: Bool, url explicitURL: String? = nil, prompt: String = "Live, please") async throws {
        // The upstream pauses after 2 of its 8 pieces until the follower has received a piece:
        // a follower that only got the committed answer sees nothing during the pause. The test
        // waits for that event, not for time, so a loaded machine cannot make it pass or fail.
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(400)), streamChunks: 8), apiKey: "k")
        server.holdStreams(afterChunks: 2)
        let url = try explicitURL ?? TestRedis.sharedURL
        let ns = namespace()
        let (redisA, leader) = try await makeWorker(url, server: server, namespace: ns, id: "a", policy: patientPolicy)
        let (redisB, other) = try await makeWorker(url, server: server, namespace: ns, id: "b", policy: patientPolicy)
        let follower = sameWorker ? leader : other
        let leaderPieces = PieceCount()
        let followerPieces = PieceCount()
        @Sendable func collect(_ stream: AsyncThrowingStream<ChatStreamEvent, any Error>, counting: PieceCount) async throws -> (deltas: [String], result: LLMResult?) {
            var deltas: [String] = []
            var result: LLMResult?
            for try await event in stream {
                switch event {
                case .delta(let piece):
                    deltas.append(piece)
                    counting.add()
                case .reasoning: break
                case .completed(let final): result = final
                }
            }
            return (deltas, result)
        }
        async let leading = collect(leader.stream(ask(prompt)), counting: leaderPieces)
        try await waitUntil("the leader's upstream call started") { server.callCount == 1 }
        async let following = collect(follower.stream(ask(prompt)), counting: followerPieces)
        try await waitUntil("the follower got a piece while the upstream's answer was paused after 2 of its 8", limit: .seconds(60)) {
            server.heldStreamCount == 1 && leaderPieces.value == 2 && followerPieces.value >= 1
        }
        let followerPiecesDuringPause = followerPieces.value
        server.releaseStreams()
        let led = try await leading
        let followed = try await following
        let content = try #require(led.result?.completion.content)
        #expect((1...2).contains(followerPiecesDuringPause), "the follower had \(followerPiecesDuringPause) pieces during the pause")
        #expect(led.deltas.count == 8)
        #expect(followed.deltas.joined() == content)
        #expect(followed.result?.source == (sameWorker ? .joinedInProcess : .receivedFromOtherWorker))
        #expect(server.callCount == 1)
        #expect(try leader.cache(for: ns).liveAnnouncements.count == 0, "nothing is left registered")
        await leader.close(); await other.close(); await redisA.close(); await redisB.close(); await server.stop()
    }
    @Test("reasoning reaches a live follower in another worker and a replayed hit, before the answer, and is stored with it; one upstream call")
    func reasoningStreamsLiveAndReplays() async throws {
        // 3 s: on a loaded CI machine a follower can take over a second just to start asking.
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.seconds(3)), streamChunks: 6), apiKey: "k")
        let url = try TestRedis.sharedURL
        let ns = namespace()
        let (redisA, leader) = try await makeWorker(url, server: server, namespace: ns, id: "a", policy: patientPolicy)
        let (redisB, other) = try await makeWorker(url, server: server, namespace: ns, id: "b", policy: patientPolicy)
        let request = ChatRequest(model: "sim-reasoner", messages: [.user("Why fence the lock?")])
        func collect(_ stream: AsyncThrowingStream<ChatStreamEvent, any Error>) async throws -> (events: [ChatStreamEvent], result: LLMResult?) {
            var events: [ChatStreamEvent] = []
            var result: LLMResult?
            for try await event in stream {
                if case .completed(let final) = event { result = final } else { events.append(event) }
            }
            return (events, result)
        }
        func texts(_ events: [ChatStreamEvent]) -> (reasoning: String, content: String, reasoningFirst: Bool) {
            var reasoning = "", content = "", sawContent = false, reasoningFirst = true
            for event in events {
                switch event {
                case .reasoning(let piece):
                    reasoning += piece
                    if sawContent { reasoningFirst = false }
                case .delta(let piece):
                    content += piece
                    sawContent = true
                case .completed: break
                }
            }
            return (reasoning, content, reasoningFirst)
        }
        async let leading = collect(leader.stream(request))
        try await waitUntil("the leader's upstream call started") { server.callCount == 1 }
        async let following = collect(other.stream(request))
        let led = try await leading
        let followed = try await following
        let completion = try #require(led.result?.completion)
        let reasoning = try #require(completion.reasoningContent)
        for (name, run) in [("leader", led), ("follower", followed)] {
            let seen = texts(run.events)
            #expect(seen.reasoning == reasoning, "\(name)")
            #expect(seen.content == completion.content, "\(name)")
            #expect(seen.reasoningFirst, "\(name)")
        }
        #expect(followed.result?.source == .receivedFromOtherWorker)
        #expect(followed.result?.completion.reasoningContent == reasoning)
        // A hit replays the stored reasoning, then the answer.
        let hit = try await collect(other.stream(request))
        #expect(hit.result?.source == .freshHit)
        #expect(hit.events == [.reasoning(reasoning), .delta(completion.content)])
        #expect(server.callCount == 1)
        await leader.close(); await other.close(); await redisA.close(); await redisB.close(); await server.stop()
    }
    @Test("tracing: the leader's trace has llm.request > stampede.cache.get > stampede.cache.compute > (llm.upstream, stampede.cache.commit) with its fence token; the follower's trace waits on that token; no prompt text in any attribute")
    func tracingSpans() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(20))), apiKey: "k")
        let url = try TestRedis.sharedURL
        let ns = namespace()
        let gate = TestGate()
        let (redisA, leader) = try await makeWorker(url, server: server, namespace: ns, id: "a", policy: patientPolicy, gate: gate)
        let (redisB, follower) = try await makeWorker(url, server: server, namespace: ns, id: "b", policy: patientPolicy)
        let prompt = "Trace me, secret prompt"
        async let leading = RecordingTracer.trace { try await leader.complete(ask(prompt)) }
        try await waitUntil("the leader's upstream call reached the gate") { gate.arrived == 1 }
        async let following = RecordingTracer.trace { try await follower.complete(ask(prompt)) }
        let followerCache = try follower.cache(for: ns)
        try await waitUntil("the follower waits") { followerCache.diagnostics.followerWaits > 0 }
        gate.open()
        let (led, leaderTrace) = try await leading
        let (followed, followerTrace) = try await following
        #expect(led.source == .computed && followed.source == .receivedFromOtherWorker)

        let spans = RecordingTracer.shared.spans(of: leaderTrace)
        func one(_ name: String, in spans: [RecordingTracer.Finished]) throws -> RecordingTracer.Finished {
            let found = spans.filter { $0.name == name }
            try #require(found.count == 1, "\(found.count) spans named \(name): \(spans.map(\.name))")
            return found[0]
        }
        let request = try one("llm.request", in: spans)
        let get = try one("stampede.cache.get", in: spans)
        let compute = try one("stampede.cache.compute", in: spans)
        let upstream = try one("llm.upstream", in: spans)
        let commit = try one("stampede.cache.commit", in: spans)
        #expect(get.parentID == request.spanID && compute.parentID == get.spanID)
        #expect(upstream.parentID == compute.spanID && commit.parentID == compute.spanID)
        let token = try #require(server.calls.first?.fenceToken)
        #expect(compute.attributes["stampede.fence_token"] == token && upstream.attributes["stampede.fence_token"] == token)
        #expect(commit.attributes["stampede.commit"] == "accepted")
        #expect(request.attributes["stampede.source"] == "computed" && request.attributes["llm.called_upstream"] == "true")
        #expect(get.attributes["stampede.namespace"] == ns && upstream.attributes["gen_ai.request.model"] == "sim")
        #expect(upstream.kind == .client && commit.kind == .client)

        let followerSpans = RecordingTracer.shared.spans(of: followerTrace)
        let waits = followerSpans.filter { $0.name == "stampede.cache.wait" }
        #expect(!waits.isEmpty && waits.allSatisfy { $0.attributes["stampede.awaited_fence_token"] == token }, "\(waits.map(\.attributes))")
        #expect(try one("stampede.cache.get", in: followerSpans).attributes["stampede.source"] == "received_from_other_worker")
        #expect(!followerSpans.contains { $0.name == "llm.upstream" })
        for span in spans + followerSpans {
            #expect(!span.attributes.values.contains { $0.contains("secret prompt") }, "\(span.name) carries the prompt")
        }
        await leader.close(); await follower.close(); await redisA.close(); await redisB.close(); await server.stop()
    }
}



/// A policy for tests whose upstream answers take seconds: a loaded CI machine can take more than
/// the default test policy's 5 s compute timeout to stream a 3 s answer, or a follower long to join
/// while a held answer is paused (those tests wait up to 60 s).
private let patientPolicy = CachePolicy(freshFor: .seconds(60), staleFor: .seconds(60), computeTimeout: .seconds(60), lockTTL: .seconds(70), ttlJitter: 0)

/// How many pieces a stream's consumer has received so far (read by the test while it runs).
private final class PieceCount: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The distinct counts a test saw (shared by its concurrent tasks).
private final class SeenCounts: Sendable {
    private let seen = Mutex<Set<Int>>([])
    func insert(_ value: Int) { seen.withLock { _ = $0.insert(value) } }
    var values: Set<Int> { seen.withLock { $0 } }
}
