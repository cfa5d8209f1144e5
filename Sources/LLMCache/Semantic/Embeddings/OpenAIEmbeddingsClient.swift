public import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat

/// Settings of ``OpenAIEmbeddingsClient``.
public struct EmbeddingsConfiguration: Sendable {
    /// The API root, e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama) or a
    /// vLLM server's `/v1` (`/embeddings` is appended).
    public var baseURL: String
    /// The embedding model, e.g. `text-embedding-3-small` or `all-MiniLM-L6-v2`.
    public var model: String
    /// The bearer token; `nil` sends no `Authorization` header (local servers).
    public var apiKey: String?
    /// Asks the upstream for this many dimensions (`dimensions`, for models that support it); `nil` sends none.
    public var requestedDimensions: Int?
    /// Retries after 429, 408, 5xx or connection failures (never past the deadline).
    public var maxRetries: Int
    /// The first retry's wait; doubles per retry, with full jitter, up to ``retryCap``.
    public var retryBase: Duration
    /// The longest wait between retries.
    public var retryCap: Duration
    /// The largest response body accepted.
    public var maxResponseBytes: Int

    /// Creates a configuration. Defaults: 2 retries from 100 ms, capped at 2 s; 64 MiB responses.
    public init(
        baseURL: String = "https://api.openai.com/v1",
        model: String = "text-embedding-3-small",
        apiKey: String? = nil,
        requestedDimensions: Int? = nil,
        maxRetries: Int = 2,
        retryBase: Duration = .milliseconds(100),
        retryCap: Duration = .seconds(2),
        maxResponseBytes: Int = 64 << 20
    ) {
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.requestedDimensions = requestedDimensions
        self.maxRetries = maxRetries
        self.retryBase = retryBase
        self.retryCap = retryCap
        self.maxResponseBytes = maxResponseBytes
    }
}

/// An OpenAI-compatible `/v1/embeddings` client on async-http-client (OpenAI, Azure OpenAI,
/// Ollama, vLLM and the local all-MiniLM-L6-v2 server all speak it), with the chat client's
/// retry and deadline rules.
public final class OpenAIEmbeddingsClient: EmbeddingsUpstream {
    /// The configuration.
    public let configuration: EmbeddingsConfiguration
    private let transport: UpstreamTransport

    /// A client using `httpClient` (default: async-http-client's shared client).
    public init(configuration: EmbeddingsConfiguration, httpClient: HTTPClient = .shared, logger: Logger = Logger(label: "LLMCache.OpenAIEmbeddingsClient")) {
        self.configuration = configuration
        self.transport = UpstreamTransport(
            http: httpClient, logger: logger, maxRetries: max(0, configuration.maxRetries), retryBase: configuration.retryBase,
            retryCap: configuration.retryCap, maxResponseBytes: configuration.maxResponseBytes
        )
    }

    /// The model name sent upstream.
    public var model: String { configuration.model }

    /// One vector per text, in order; retries retryable failures until `deadline`.
    /// - Throws: ``UpstreamError`` (HTTP errors keep the upstream's message verbatim;
    ///   `malformedResponse` when the answer has the wrong number of vectors or a non-finite value).
    public func embed(_ texts: [String], deadline: ContinuousClock.Instant) async throws -> EmbeddingBatch {
        guard !texts.isEmpty else { return EmbeddingBatch(vectors: [], promptTokens: 0) }
        let started = ContinuousClock.now
        var http = HTTPClientRequest(url: configuration.baseURL.trimmingSuffix("/") + "/embeddings")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey = configuration.apiKey { http.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        let body = try JSONEncoder().encode(WireEmbeddingsRequest(model: configuration.model, input: texts, dimensions: configuration.requestedDimensions))
        http.body = .bytes(ByteBuffer(data: body))
        let request = http
        let transport = self.transport
        return try await transport.withRetries(deadline: deadline) {
            let response = try await transport.execute(request, started: started, deadline: deadline)
            let body = try await transport.collect(response, started: started, deadline: deadline)
            guard response.status == .ok else { throw UpstreamTransport.httpFailure(response, body) }
            return try Self.decode(body, expected: texts.count)
        }
    }

    static func decode(_ body: ByteBuffer, expected: Int) throws -> EmbeddingBatch {
        let wire: WireEmbeddingsResponse
        do {
            wire = try JSONDecoder().decode(WireEmbeddingsResponse.self, from: Data(buffer: body))
        } catch {
            throw UpstreamError.malformedResponse("not an embeddings list: \(String(buffer: body).prefix(120))")
        }
        guard wire.data.count == expected else {
            throw UpstreamError.malformedResponse("\(wire.data.count) embeddings for \(expected) inputs")
        }
        var vectors = [[Float]](repeating: [], count: expected)
        for (position, item) in wire.data.enumerated() {
            let index = item.index ?? position
            guard index >= 0, index < expected, vectors[index].isEmpty else {
                throw UpstreamError.malformedResponse("embedding index \(index) is out of range or repeated")
            }
            guard !item.embedding.isEmpty, item.embedding.allSatisfy(\.isFinite) else {
                throw UpstreamError.malformedResponse("embedding \(index) is empty or holds a non-finite number")
            }
            vectors[index] = item.embedding
        }
        return EmbeddingBatch(vectors: vectors, promptTokens: max(0, wire.usage?.prompt_tokens ?? 0))
    }
}

struct WireEmbeddingsRequest: Encodable {
    var model: String
    var input: [String]
    var dimensions: Int?
}

struct WireEmbeddingsResponse: Decodable {
    struct Item: Decodable {
        var index: Int?
        var embedding: [Float]
    }
    struct Usage: Decodable {
        var prompt_tokens: Int?
    }
    var data: [Item]
    var usage: Usage?
}
