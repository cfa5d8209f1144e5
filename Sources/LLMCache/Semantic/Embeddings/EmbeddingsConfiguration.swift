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
