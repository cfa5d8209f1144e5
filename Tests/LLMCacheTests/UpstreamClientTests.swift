import AsyncHTTPClient
import Foundation
@testable import LLMCache
import Logging
import SimulatedLLM
import Synchronization
import Testing

private func request(_ text: String = "What is a stampede?", maxTokens: Int? = nil) -> ChatRequest {
    ChatRequest(model: "sim-model", messages: [.user(text)], maxTokens: maxTokens)
}

private func client(_ server: SimulatedLLMServer, apiKey: String? = "k", retries: Int = 3) -> OpenAIClient {
    OpenAIClient(
        configuration: OpenAIConfiguration(baseURL: server.baseURL, apiKey: apiKey, maxRetries: retries, retryBase: .milliseconds(20), retryCap: .milliseconds(200), workerID: "w1"),
        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    )
}

private func deadline(_ duration: Duration = .seconds(5)) -> ContinuousClock.Instant { .now + duration }

@Suite("OpenAI-compatible upstream client against a local server")
struct UpstreamClientTests {
    @Test("a completion is decoded with its content, finish reason and usage; the worker id is sent")
    func success() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let completion = try await client(server).complete(request(), deadline: deadline())
        #expect(completion.content.hasPrefix("Simulated answer to \"What is a stampede?\""))
        #expect(completion.finishReason == "stop")
        #expect((completion.usage?.promptTokens ?? 0) == 5)  // 19 characters / 4, rounded up
        #expect((completion.usage?.completionTokens ?? 0) == (completion.content.count + 3) / 4)
        #expect(server.calls.map(\.worker) == ["w1"])
        #expect(server.calls.first?.authorization == "Bearer k")
        await server.stop()
    }

    @Test("429 with Retry-After: the client waits at least that long, then succeeds (2 calls)")
    func retryAfter() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        server.enqueue([.status(429, retryAfter: "1")])
        let started = ContinuousClock.now
        let completion = try await client(server).complete(request(), deadline: deadline())
        #expect(!completion.content.isEmpty)
        #expect(ContinuousClock.now - started >= .seconds(1))
        #expect(server.callCount == 2)
        #expect(server.calls.map(\.status) == [429, 200])
        await server.stop()
    }

    @Test("a Retry-After longer than the time left fails at once instead of waiting past the deadline")
    func retryAfterBeyondDeadline() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        server.enqueue([.status(429, retryAfter: "120")])
        let started = ContinuousClock.now
        await #expect(throws: UpstreamError.self) { try await client(server).complete(request(), deadline: deadline(.seconds(60))) }
        #expect(ContinuousClock.now - started < .seconds(30))  // waiting would take 120 s (Retry-After) or 60 s (deadline)
        #expect(server.callCount == 1)
        await server.stop()
    }

    @Test("500 then success: retried once")
    func serverErrorThenSuccess() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        server.enqueue([.status(500)])
        _ = try await client(server).complete(request(), deadline: deadline())
        #expect(server.calls.map(\.status) == [500, 200])
        await server.stop()
    }

    @Test("401 is not retried and says to fix the API key")
    func unauthorized() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "right")
        do {
            _ = try await client(server, apiKey: "wrong").complete(request(), deadline: deadline())
            Issue.record("expected 401")
        } catch let error as UpstreamError {
            guard case .http(401, let message, _, let code) = error else { Issue.record("got \(error)"); return }
            #expect(message == "Incorrect API key provided")
            #expect(code == "invalid_api_key")
            #expect(error.description.contains("OPENAI_API_KEY"))
        }
        #expect(server.callCount == 1)
        await server.stop()
    }

    @Test("a refused connection is reported as such, with the real elapsed time, not as 'did not answer within 0.0 seconds'")
    func refusedConnectionKeepsItsCause() async throws {
        // A port nobody listens on: bind one, note it, close it.
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        let baseURL = server.baseURL
        await server.stop()
        let refused = OpenAIClient(
            configuration: OpenAIConfiguration(baseURL: baseURL, apiKey: "k", maxRetries: 2, retryBase: .milliseconds(20), retryCap: .milliseconds(100)),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        do {
            _ = try await refused.complete(request(), deadline: deadline(.seconds(2)))  // async-http-client retries a refused connect until the deadline, then reports the refusal
            Issue.record("expected a failure")
        } catch let error as UpstreamError {
            guard case .connection(let detail) = error else { Issue.record("got \(error)"); return }
            #expect(detail.lowercased().contains("refused"), "\(detail)")
            #expect(detail.contains(" s)"), "the elapsed time is stated: \(detail)")
            #expect(!error.description.contains("0.0 seconds"))
        }
    }

    @Test("a timeout states the real time waited")
    func timeoutStatesElapsedTime() {
        #expect(UpstreamError.timedOut(after: .milliseconds(1_250)).description.contains("within 1.25 s"))
    }

    @Test("a hung upstream times out at the deadline")
    func timeout() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        server.enqueue([.hang])
        let started = ContinuousClock.now
        do {
            _ = try await client(server, retries: 0).complete(request(), deadline: deadline(.milliseconds(300)))
            Issue.record("expected a timeout")
        } catch let error as UpstreamError {
            guard case .timedOut = error else { Issue.record("got \(error)"); return }
        }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(280) && waited < .seconds(15))  // ends at the deadline, not when the hang would
        await server.stop()
    }

    @Test("malformed JSON is a typed error")
    func malformed() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(1))), apiKey: "k")
        server.enqueue([.malformedJSON])
        do {
            _ = try await client(server).complete(request(), deadline: deadline())
            Issue.record("expected malformedResponse")
        } catch let error as UpstreamError {
            guard case .malformedResponse = error else { Issue.record("got \(error)"); return }
        }
        await server.stop()
    }

    @Test("an SSE stream is assembled into exactly the non-streamed answer, delta by delta")
    func streamAssembled() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(20)), streamChunks: 6), apiKey: "k")
        let upstream = client(server)
        let whole = try await upstream.complete(request(), deadline: deadline())
        let deltas = Mutex<[String]>([])
        let streamed = try await upstream.stream(request(), deadline: deadline()) { piece in deltas.withLock { $0.append(piece.text) } }
        #expect(streamed.content == whole.content)
        #expect(deltas.withLock { $0.count } == 6)
        #expect(deltas.withLock { $0.joined() } == whole.content)
        #expect(streamed.finishReason == "stop")
        #expect(streamed.usage == whole.usage)
        await server.stop()
    }

    @Test("streamed tool-call deltas are merged by index into exactly the non-streamed tool calls")
    func streamedToolCallsMerged() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(10)), streamChunks: 4), apiKey: "k")
        let upstream = client(server)
        let tools: JSONValue = [["type": "function", "function": ["name": "search_docs", "parameters": ["type": "object"]]]]
        let ask = ChatRequest(model: "sim-model", messages: [.user("Find the lease docs")], tools: tools)
        let whole = try await upstream.complete(ask, deadline: deadline())
        let deltas = Mutex<[ChatDelta]>([])
        let streamed = try await upstream.stream(ask, deadline: deadline()) { piece in deltas.withLock { $0.append(piece) } }
        let expected = #"[{"function":{"arguments":"{\"query\":\"Find the lease docs\"}","name":"search_docs"},"id":"call_"#
        #expect(whole.toolCallsJSON?.hasPrefix(expected) == true, "\(whole.toolCallsJSON ?? "nil")")
        #expect(streamed.toolCallsJSON == whole.toolCallsJSON)
        #expect(streamed.finishReason == "tool_calls")
        #expect(streamed.content == "")
        // Tool calls are not text: nothing was handed on as a piece.
        #expect(deltas.withLock { $0.isEmpty })
        await server.stop()
    }

    @Test("reasoning is kept, streamed before the answer, and equal to the non-streamed reasoning")
    func reasoningKept() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(10)), streamChunks: 3), apiKey: "k")
        let upstream = client(server)
        let ask = ChatRequest(model: "sim-reasoner", messages: [.user("Why fence locks?")])
        let whole = try await upstream.complete(ask, deadline: deadline())
        let deltas = Mutex<[ChatDelta]>([])
        let streamed = try await upstream.stream(ask, deadline: deadline()) { piece in deltas.withLock { $0.append(piece) } }
        let reasoning = try #require(whole.reasoningContent)
        #expect(reasoning.hasPrefix("Thinking about \"Why fence locks?\""))
        #expect(streamed.reasoningContent == reasoning)
        #expect(streamed.content == whole.content)
        let pieces = deltas.withLock { $0 }
        // 2 reasoning pieces, then 3 answer pieces, in that order.
        #expect(pieces.count == 5)
        #expect(pieces.prefix(2).allSatisfy { if case .reasoning = $0 { true } else { false } })
        #expect(pieces.suffix(3).allSatisfy { if case .content = $0 { true } else { false } })
        #expect(pieces.prefix(2).map(\.text).joined() == reasoning)
        await server.stop()
    }

    @Test("tool-call deltas: name and arguments are joined per index, ids kept, calls ordered by index; deltas without an index are counted and left out")
    func toolCallAccumulator() {
        var calls = ToolCallAccumulator()
        calls.add(#"[{"index":1,"id":"b","type":"function","function":{"name":"second","arguments":""}}]"#)
        calls.add(#"[{"index":0,"id":"a","type":"function","function":{"name":"fir","arguments":"{\"x\""}}]"#)
        calls.add(#"[{"index":0,"function":{"name":"st","arguments":":1}"}},{"index":1,"function":{"arguments":"{}"}}]"#)
        calls.add(#"[{"function":{"arguments":"lost"}}]"#)
        calls.add("not json")
        #expect(calls.json == #"[{"function":{"arguments":"{\"x\":1}","name":"first"},"id":"a","type":"function"},{"function":{"arguments":"{}","name":"second"},"id":"b","type":"function"}]"#)
        #expect(calls.ignored == 2)
        #expect(ToolCallAccumulator().json == nil)
    }

    @Test("a stream cut off before [DONE] is an error, after delivering what arrived")
    func streamCutOff() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(10)), streamChunks: 6), apiKey: "k")
        server.enqueue([.cutStream(afterChunks: 2)])
        let received = Mutex(0)
        do {
            _ = try await client(server).stream(request(), deadline: deadline()) { _ in received.withLock { $0 += 1 } }
            Issue.record("expected streamCutOff")
        } catch let error as UpstreamError {
            guard case .streamCutOff(let characters) = error else { Issue.record("got \(error)"); return }
            #expect(characters > 0)
        }
        // What arrived before the cut is delivered; the HTTP client may drop the last event if the close raced it.
        #expect((1...2).contains(received.withLock { $0 }))
        await server.stop()
    }

    @Test("Retry-After parses seconds and HTTP dates")
    func retryAfterParsing() {
        #expect(OpenAIClient.parseRetryAfter("2") == .seconds(2))
        #expect(OpenAIClient.parseRetryAfter("0.5") == .milliseconds(500))
        #expect(OpenAIClient.parseRetryAfter("soon") == nil)
        #expect(OpenAIClient.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT") == .zero)  // in the past
    }
}
