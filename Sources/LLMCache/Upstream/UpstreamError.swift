public import StampedeCache

/// Why an upstream (OpenAI-compatible) call failed. Each case says what to do.
public enum UpstreamError: Error, Sendable, Hashable, CustomStringConvertible, RetryClassifiedError {
    /// The upstream answered with an HTTP error; `message`, `type` and `code` are its own.
    case http(status: Int, message: String, type: String?, code: String?)
    /// The call (with its retries) did not finish before the deadline (the cache's compute timeout).
    case timedOut(after: Duration)
    /// The connection failed (refused, reset, DNS, TLS).
    case connection(String)
    /// The response was not the chat-completions JSON we expect.
    case malformedResponse(String)
    /// A streamed answer ended before `[DONE]`; it is not cached.
    case streamCutOff(receivedCharacters: Int)
    /// No API key was configured for an upstream that needs one.
    case missingAPIKey

    /// Whether a retry may help (429, 5xx, connection failures).
    public var isRetryable: Bool {
        switch self {
        case .http(let status, _, _, _): return status == 429 || status == 408 || (500...599).contains(status)
        case .connection: return true
        default: return false
        }
    }

    /// Whether another computation of the same request can succeed, so that the callers waiting for
    /// this one get one more single-flight round: not for an HTTP 4xx other than 408 and 429 (the
    /// request itself is refused), a missing API key, or a call that already used up the compute
    /// timeout (the waiting callers have waited that long already); yes for everything else.
    public var retryCanSucceed: Bool {
        switch self {
        case .http(let status, _, _, _): return !(400...499).contains(status) || status == 408 || status == 429
        case .missingAPIKey, .timedOut: return false
        default: return true
        }
    }

    /// One line: what failed, why, what to do.
    public var description: String {
        switch self {
        case .http(401, let message, _, _):
            return "upstream refused the API key (401: \(message)); set OPENAI_API_KEY (or --api-key) to a valid key"
        case .http(403, let message, _, _):
            return "upstream denied access (403: \(message)); check the key's permissions and organization"
        case .http(404, let message, _, _):
            return "upstream has no such endpoint or model (404: \(message)); check OPENAI_BASE_URL and the model name"
        case .http(429, let message, _, _):
            return "upstream rate limit (429: \(message)); retried until the compute timeout; lower the request rate or raise your quota"
        case .http(let status, let message, _, _):
            return "upstream error \(status): \(message)"
        case .timedOut(let after):
            return "upstream did not answer within \(OpenAIClient.shown(after)) (the cache's computeTimeout); raise computeTimeout and lockTTL if the model is legitimately this slow"
        case .connection(let detail):
            return "cannot reach the upstream: \(detail); check OPENAI_BASE_URL and the network"
        case .malformedResponse(let detail):
            return "upstream answered with something that is not a chat completion: \(detail)"
        case .streamCutOff(let received):
            return "the upstream's stream ended before [DONE] after \(received) characters; the partial answer was not cached"
        case .missingAPIKey:
            return "no API key: set OPENAI_API_KEY (or pass --api-key)"
        }
    }
}
