public import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat

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

    /// Answers an `/v1/embeddings` request as sent by a caller (its own model, input and fields;
    /// this client's base URL and key), retrying like ``embed(_:deadline:)``.
    /// - Throws: ``UpstreamError`` (the upstream's status and message for HTTP errors).
    public func respond(to request: EmbeddingsRequest, deadline: ContinuousClock.Instant) async throws -> EmbeddingsResponse {
        let started = ContinuousClock.now
        var http = HTTPClientRequest(url: configuration.baseURL.trimmingSuffix("/") + "/embeddings")
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey = UpstreamAPIKey.current?.value ?? configuration.apiKey { http.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        http.body = .bytes(ByteBuffer(string: request.upstreamBody.canonicalJSON()))
        let prepared = http
        let transport = self.transport
        let expected = request.inputCount
        return try await transport.withRetries(deadline: deadline) {
            let response = try await transport.execute(prepared, started: started, deadline: deadline)
            let body = try await transport.collect(response, started: started, deadline: deadline)
            guard response.status == .ok else { throw UpstreamTransport.httpFailure(response, body) }
            let batch = try Self.decode(body, expected: expected)
            let model = (try? JSONDecoder().decode(WireModelName.self, from: Data(buffer: body)))?.model ?? request.model
            return EmbeddingsResponse(model: model, vectors: batch.vectors, promptTokens: batch.promptTokens)
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
