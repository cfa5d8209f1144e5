public import LLMCache
public import RedisClient

/// Everything the proxy's routes use: the Redis client, one ``LLMCache`` per upstream profile
/// (each with that upstream's credential), the tenants, and limits.
public struct ProxyContext: Sendable {
    /// The Redis client (for `/readyz`).
    public var redis: RedisClient
    /// The LLM cache of each upstream profile, by profile name.
    public var caches: [String: LLMCache]
    /// The embeddings client of each upstream profile (its base URL and credential), by profile name.
    public var embeddings: [String: OpenAIEmbeddingsClient]
    /// The upstream profiles, by name.
    public var upstreams: [String: UpstreamProfile]
    /// The virtual keys.
    public var tenants: TenantDirectory
    /// The largest request body accepted.
    public var maxBodyBytes: Int
    /// Where upstream API keys are read (the environment variables the profiles name).
    public var environment: [String: String]
    /// The Prometheus text exposition of every metric (`/metrics`).
    public var metricsText: @Sendable () -> String
    /// Chat request bodies parsed recently (shared by every copy of this context).
    let recentChatBodies = RecentChatBodies()
    /// Completion bodies rendered recently (shared by every copy of this context).
    let recentRenderedCompletions = RecentRenderedCompletions()

    /// Creates a context.
    public init(
        redis: RedisClient, caches: [String: LLMCache], upstreams: [UpstreamProfile], tenants: TenantDirectory, maxBodyBytes: Int,
        environment: [String: String], metricsText: @escaping @Sendable () -> String, embeddings: [String: OpenAIEmbeddingsClient] = [:]
    ) {
        self.redis = redis
        self.caches = caches
        self.embeddings = embeddings
        self.upstreams = Dictionary(upstreams.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.tenants = tenants
        self.maxBodyBytes = maxBodyBytes
        self.environment = environment
        self.metricsText = metricsText
    }
}
