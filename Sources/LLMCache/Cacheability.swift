/// Which requests and responses may be cached.
///
/// Defaults: a request that offers the model tools (`tools`) or carries tool results (`tool`
/// messages) is not cached — its answer can depend on outside state — unless
/// ``cacheToolRequests`` is set; a response cut off by `max_tokens` (`finish_reason` `length`),
/// filtered (`content_filter`), asking for tool calls, or empty is not cached; errors never are.
/// Add your own rules (for example "never cache prompts containing a user id") with
/// ``requestRule`` and ``responseRule``.
public struct CacheabilityPolicy: Sendable {
    /// Cache requests that use tools anyway (only if tool results never depend on outside state).
    public var cacheToolRequests: Bool
    /// An extra rule: return `false` to bypass the cache for a request.
    public var requestRule: (@Sendable (ChatRequest) -> Bool)?
    /// An extra rule: return `false` to keep a response out of the cache.
    public var responseRule: (@Sendable (ChatRequest, ChatCompletion) -> Bool)?

    /// Creates a policy.
    public init(
        cacheToolRequests: Bool = false,
        requestRule: (@Sendable (ChatRequest) -> Bool)? = nil,
        responseRule: (@Sendable (ChatRequest, ChatCompletion) -> Bool)? = nil
    ) {
        self.cacheToolRequests = cacheToolRequests
        self.requestRule = requestRule
        self.responseRule = responseRule
    }

    /// Why a request bypasses the cache, or `nil` if it may be cached.
    public func reasonNotToCache(_ request: ChatRequest) -> String? {
        if !cacheToolRequests {
            if request.tools != nil { return "the request offers tools" }
            if request.messages.contains(where: { $0.role == .tool }) { return "the request carries tool results" }
        }
        if let requestRule, !requestRule(request) { return "a custom rule excluded the request" }
        return nil
    }

    /// Why a response must not be cached, or `nil` if it may be.
    public func reasonNotToCache(_ response: ChatCompletion, for request: ChatRequest) -> String? {
        switch response.finishReason {
        case "length": return "the answer was cut off by max_tokens (finish_reason length)"
        case "content_filter": return "the answer was filtered (finish_reason content_filter)"
        case "tool_calls", "function_call": return "the answer asks for tool calls"
        default: break
        }
        if response.content.isEmpty && response.toolCallsJSON == nil { return "the answer is empty" }
        if let responseRule, !responseRule(request, response) { return "a custom rule excluded the response" }
        return nil
    }
}

extension ChatMessage {
    /// The message's text parts joined (image parts are skipped).
    public var text: String {
        content.compactMap { part -> String? in
            if case .text(let text) = part { return text }
            return nil
        }.joined()
    }
}
