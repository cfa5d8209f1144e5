public import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import StampedeCache
import Tracing

/// Anything that answers chat requests: the OpenAI-compatible HTTP client, or your own.
public protocol ChatCompletionUpstream: Sendable {
    /// One complete answer, before `deadline`.
    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatCompletion
    /// A streamed answer: `onDelta` receives each piece of reasoning and of answer text as it
    /// arrives; returns the assembled completion (tool calls merged) only if the stream finished
    /// properly (`[DONE]`), else throws.
    func stream(_ request: ChatRequest, deadline: ContinuousClock.Instant, onDelta: @escaping @Sendable (ChatDelta) -> Void) async throws -> ChatCompletion
}

/// Settings of ``OpenAIClient``.
public struct OpenAIConfiguration: Sendable {
    /// The API root, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    public var baseURL: String
    /// The bearer token (`OPENAI_API_KEY`); `nil` sends no `Authorization` header.
    public var apiKey: String?
    /// The optional `OpenAI-Organization` header.
    public var organization: String?
    /// Retries after 429, 408, 5xx or connection failures (never past the deadline).
    public var maxRetries: Int
    /// The first retry's wait; doubles per retry, with full jitter, up to ``retryCap``.
    public var retryBase: Duration
    /// The longest wait between retries (a longer `Retry-After` is honoured if the deadline allows).
    public var retryCap: Duration
    /// Identifies this worker to the upstream (`X-Stampede-Worker`), for tracing and the chaos suite.
    public var workerID: String?
    /// The largest response body accepted.
    public var maxResponseBytes: Int

    /// Creates a configuration. Defaults: 3 retries from 250 ms, capped at 8 s; 16 MiB responses.
    public init(
        baseURL: String = "https://api.openai.com/v1",
        apiKey: String? = nil,
        organization: String? = nil,
        maxRetries: Int = 3,
        retryBase: Duration = .milliseconds(250),
        retryCap: Duration = .seconds(8),
        workerID: String? = nil,
        maxResponseBytes: Int = 16 << 20
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.organization = organization
        self.maxRetries = maxRetries
        self.retryBase = retryBase
        self.retryCap = retryCap
        self.workerID = workerID
        self.maxResponseBytes = maxResponseBytes
    }

    /// `OPENAI_BASE_URL` (default `https://api.openai.com/v1`), `OPENAI_API_KEY`, `OPENAI_ORG_ID`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> OpenAIConfiguration {
        OpenAIConfiguration(
            baseURL: environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.openai.com/v1",
            apiKey: environment["OPENAI_API_KEY"].flatMap { $0.isEmpty ? nil : $0 },
            organization: environment["OPENAI_ORG_ID"].flatMap { $0.isEmpty ? nil : $0 }
        )
    }
}

/// An OpenAI-compatible chat-completions client on async-http-client.
///
/// async-http-client rather than URLSession: it is SwiftNIO-native (shares event loops with the
/// Redis client), streams response bodies as they arrive on Linux, and takes a per-request
/// deadline — the cache's compute timeout bounds the whole call, retries included.
public final class OpenAIClient: ChatCompletionUpstream {
    /// The configuration.
    public let configuration: OpenAIConfiguration
    private let transport: UpstreamTransport

    /// A client using `httpClient` (default: async-http-client's shared client).
    public init(configuration: OpenAIConfiguration, httpClient: HTTPClient = .shared, logger: Logger = Logger(label: "LLMCache.OpenAIClient")) {
        self.configuration = configuration
        self.transport = UpstreamTransport(
            http: httpClient, logger: logger, maxRetries: configuration.maxRetries, retryBase: configuration.retryBase,
            retryCap: configuration.retryCap, maxResponseBytes: configuration.maxResponseBytes
        )
    }

    /// One complete answer; retries retryable failures until `deadline`.
    public func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatCompletion {
        let started = ContinuousClock.now
        return try await withRetries(deadline: deadline) {
            let response = try await self.send(request, stream: false, started: started, deadline: deadline)
            let body = try await self.collect(response, started: started, deadline: deadline)
            guard response.status == .ok else { throw Self.httpFailure(response, body) }
            return try Self.decodeCompletion(body, requestedModel: request.model)
        }
    }

    /// A streamed answer. Retries only failures that happen before the first byte of the answer.
    public func stream(_ request: ChatRequest, deadline: ContinuousClock.Instant, onDelta: @escaping @Sendable (ChatDelta) -> Void) async throws -> ChatCompletion {
        let started = ContinuousClock.now
        let response = try await withRetries(deadline: deadline) {
            let response = try await self.send(request, stream: true, started: started, deadline: deadline)
            guard response.status == .ok else {
                let body = try await self.collect(response, started: started, deadline: deadline)
                throw Self.httpFailure(response, body)
            }
            return response
        }
        var parser = SSEParser()
        var content = ""
        var finishReason: String?
        var usage: ChatCompletion.Usage?
        var id = ""
        var model = request.model
        var reasoning = ""
        var toolCalls = ToolCallAccumulator()
        var done = false
        do {
            for try await buffer in response.body {
                for payload in parser.feed(buffer) {
                    if payload == "[DONE]" {
                        done = true
                        continue
                    }
                    let chunk: CompletionWire.Chunk
                    do {
                        chunk = try CompletionWire.chunk(payload)
                    } catch {
                        throw UpstreamError.malformedResponse("a stream event is not a chat.completion.chunk: \(payload.prefix(120))")
                    }
                    if let chunkID = chunk.id, id.isEmpty { id = chunkID }
                    if let chunkModel = chunk.model { model = chunkModel }
                    if let chunkUsage = chunk.usage { usage = chunkUsage }
                    for choice in chunk.choices {
                        if let piece = choice.reasoning, !piece.isEmpty {
                            reasoning += piece
                            onDelta(.reasoning(piece))
                        }
                        if let piece = choice.content, !piece.isEmpty {
                            content += piece
                            onDelta(.content(piece))
                        }
                        if let calls = choice.toolCalls { toolCalls.add(calls) }
                        if let reason = choice.finishReason { finishReason = reason }
                    }
                }
            }
        } catch let error as UpstreamError {
            throw error
        } catch {
            if ContinuousClock.now >= deadline { throw UpstreamError.timedOut(after: ContinuousClock.now - started) }
            throw UpstreamError.streamCutOff(receivedCharacters: content.count)
        }
        guard done else { throw UpstreamError.streamCutOff(receivedCharacters: content.count) }
        if toolCalls.ignored > 0 {
            transport.logger.warning("ignored tool-call deltas without an integer index", metadata: ["count": "\(toolCalls.ignored)"])
        }
        return ChatCompletion(
            id: id, model: model, content: content, finishReason: finishReason, usage: usage, toolCallsJSON: toolCalls.json,
            reasoningContent: reasoning.isEmpty ? nil : reasoning
        )
    }

    // MARK: HTTP

    /// One HTTP attempt (see ``UpstreamTransport/execute(_:started:deadline:)``).
    private func send(_ request: ChatRequest, stream: Bool, started: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async throws -> HTTPClientResponse {
        var http = HTTPClientRequest(url: configuration.baseURL.trimmingSuffix("/") + "/chat/completions")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "Accept", value: stream ? "text/event-stream" : "application/json")
        if let apiKey = UpstreamAPIKey.current?.value ?? configuration.apiKey { http.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let organization = configuration.organization { http.headers.add(name: "OpenAI-Organization", value: organization) }
        if let worker = configuration.workerID { http.headers.add(name: "X-Stampede-Worker", value: worker) }
        if let computation = StampedeCache.computation, let token = computation.fenceToken {
            http.headers.add(name: "X-Stampede-Fence", value: String(token))
        }
        // The trace continues at the upstream (W3C `traceparent`, when a tracer is bootstrapped).
        if let context = ServiceContext.current { InstrumentationSystem.instrument.inject(context, into: &http.headers, using: HTTPHeadersInjector()) }
        var body: [UInt8] = []
        request.wireBody(stream: stream).writeCanonical(into: &body)
        http.body = .bytes(ByteBuffer(bytes: body))
        return try await transport.execute(http, started: started, deadline: deadline)
    }

    private func collect(_ response: HTTPClientResponse, started: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async throws -> ByteBuffer {
        try await transport.collect(response, started: started, deadline: deadline)
    }

    /// "1.25 s": elapsed time for messages.
    static func shown(_ duration: Duration) -> String { UpstreamTransport.shown(duration) }

    /// `Retry-After`: delay-seconds (possibly fractional, as some proxies send) or an HTTP-date.
    static func parseRetryAfter(_ value: String) -> Duration? { UpstreamTransport.parseRetryAfter(value) }

    private static func httpFailure(_ response: HTTPClientResponse, _ body: ByteBuffer) -> UpstreamTransport.HTTPFailure {
        UpstreamTransport.httpFailure(response, body)
    }

    static func decodeCompletion(_ body: ByteBuffer, requestedModel: String) throws -> ChatCompletion {
        try CompletionWire.completion(Array(body.readableBytesView), requestedModel: requestedModel)
    }

    private func withRetries<T: Sendable>(deadline: ContinuousClock.Instant, _ attempt: @Sendable () async throws -> T) async throws -> T {
        try await transport.withRetries(deadline: deadline, attempt)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var result = self
        while result.hasSuffix(suffix) { result.removeLast(suffix.count) }
        return result
    }
}
