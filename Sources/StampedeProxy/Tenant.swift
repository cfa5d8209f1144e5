public import LLMCache

/// An authenticated caller: its namespace, allowed models and upstream.
public struct Tenant: Sendable, Hashable {
    /// The tenant's name.
    public var name: String
    /// Its cache namespace.
    public var namespace: String
    /// The upstream profile its requests use.
    public var upstream: String
    /// The models it may ask for (empty: any).
    public var models: Set<String>
    /// The caller's own upstream key, for a pass-through caller (`nil`: the upstream profile's key).
    public var upstreamAPIKey: UpstreamAPIKey?

    /// Creates a tenant (the proxy makes them from ``TenantConfiguration``s).
    public init(name: String, namespace: String, upstream: String, models: Set<String>) {
        self.name = name
        self.namespace = namespace
        self.upstream = upstream
        self.models = models
    }

    /// Whether the tenant may ask for `model`.
    public func allows(model: String) -> Bool { models.isEmpty || models.contains(model) }
}
