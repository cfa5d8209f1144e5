import LLMCache
import NIOCore

/// What a `/v1/chat/completions` body says, parsed once: the prepared request (its key derived by
/// the tenant's upstream cache), whether to stream, and the body's own `cache` controls.
struct ParsedChatBody: Sendable {
    /// The request with its key (``LLMCache/prepare(_:)``).
    var prepared: PreparedChatRequest
    /// `"stream": true`.
    var stream: Bool
    /// `"stream_options": {"include_usage": true}`.
    var includeUsage: Bool
    /// The body's `cache` object (LiteLLM-style controls), applied after `Cache-Control`.
    var cacheObject: JSONValue?

    /// Parses `bytes` for `cache`.
    /// - Throws: ``ProxyError`` 400 for a body that is not a JSON object or not a chat request.
    init(parsing bytes: ByteBuffer, for cache: LLMCache) throws {
        var object = try ProxyRequest.jsonObject(bytes)
        cacheObject = object.removeValue(forKey: "cache")
        stream = object["stream"] == .bool(true)
        includeUsage = false
        if case .object(let streamOptions)? = object["stream_options"], streamOptions["include_usage"] == .bool(true) { includeUsage = true }
        prepared = cache.prepare(try ChatRequest(openAIBody: .object(object)))
    }
}
