public import Foundation
public import LLMCache

/// What `stampede serve` serves: the upstreams it may call, the tenants (virtual API keys) it
/// accepts, and request limits. Read from a JSON file; it holds no secret in clear: upstream API
/// keys are named by environment variable, virtual keys are stored as SHA-256 hashes
/// (`stampede serve hash-key` prints one).
///
/// ```json
/// {
///   "upstreams": [{"name": "openai", "base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"}],
///   "tenants": [{"name": "search", "namespace": "search", "key_sha256": "9f86d0…", "upstream": "openai",
///                "models": ["gpt-4o-mini"]}],
///   "max_body_bytes": 1048576,
///   "prices": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}
/// }
/// ```
public struct ProxyConfiguration: Sendable, Hashable, Codable {
    /// The upstreams tenants are bound to (at least one).
    public var upstreams: [UpstreamProfile]
    /// The virtual API keys and what each may do (at least one).
    public var tenants: [TenantConfiguration]
    /// The largest request body accepted (default 1 MiB); larger ones get 413.
    public var maxBodyBytes: Int
    /// Prices by model name (exact, or the longest matching prefix), for the money-saved
    /// accounting; models without a price save no money in reports.
    public var prices: [String: ModelPrice]
    /// Pass-through mode for callers without a virtual key (absent: such callers get 401).
    public var passThrough: PassThroughConfiguration?
    /// An in-process near-cache in front of Redis (absent: every hit reads Redis).
    public var nearCache: NearCacheSettings?
    /// Answer a miss as soon as the upstream has answered, and store the answer in Redis after
    /// that (``CachePolicy/commitInBackground``; default `false`). It saves one Redis round trip
    /// per miss. The fleet still calls the upstream once per question (the lock is held until the
    /// answer is stored); the leader's response says `stored` before the store has landed, and a
    /// store that then fails is logged and counted instead of reported in `Cache-Status`.
    public var commitInBackground: Bool

    enum CodingKeys: String, CodingKey {
        case upstreams, tenants, prices
        case nearCache = "near_cache"
        case commitInBackground = "commit_in_background"
        case passThrough = "pass_through"
        case maxBodyBytes = "max_body_bytes"
    }

    /// Creates a configuration.
    public init(
        upstreams: [UpstreamProfile], tenants: [TenantConfiguration], maxBodyBytes: Int = 1 << 20, prices: [String: ModelPrice] = [:],
        passThrough: PassThroughConfiguration? = nil, nearCache: NearCacheSettings? = nil, commitInBackground: Bool = false
    ) {
        self.commitInBackground = commitInBackground
        self.passThrough = passThrough
        self.nearCache = nearCache
        self.upstreams = upstreams
        self.tenants = tenants
        self.maxBodyBytes = maxBodyBytes
        self.prices = prices
    }

    /// The price table the caches use.
    public var priceTable: PriceTable {
        PriceTable(models: prices.mapValues { PriceTable.Price(inputPerMillion: $0.inputPerMillion, outputPerMillion: $0.outputPerMillion) })
    }

    /// Decodes a configuration (unknown keys are an error, so a typo is not silently ignored).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        upstreams = try container.decode([UpstreamProfile].self, forKey: .upstreams)
        tenants = try container.decode([TenantConfiguration].self, forKey: .tenants)
        maxBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? 1 << 20
        prices = try container.decodeIfPresent([String: ModelPrice].self, forKey: .prices) ?? [:]
        passThrough = try container.decodeIfPresent(PassThroughConfiguration.self, forKey: .passThrough)
        nearCache = try container.decodeIfPresent(NearCacheSettings.self, forKey: .nearCache)
        commitInBackground = try container.decodeIfPresent(Bool.self, forKey: .commitInBackground) ?? false
        let known = Set(["upstreams", "tenants", "max_body_bytes", "prices", "pass_through", "near_cache", "commit_in_background"])
        let all = try decoder.container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue)
        if let unknown = all.first(where: { !known.contains($0) }) {
            throw ProxyConfigurationError("unknown setting '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// Reads and validates the JSON file at `path`.
    /// - Throws: ``ProxyConfigurationError`` naming the file and the problem.
    public static func load(path: String) throws -> ProxyConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ProxyConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        let configuration: ProxyConfiguration
        do {
            configuration = try JSONDecoder().decode(ProxyConfiguration.self, from: data)
        } catch let error as ProxyConfigurationError {
            throw ProxyConfigurationError("\(path): \(error.message)")
        } catch {
            throw ProxyConfigurationError("\(path) is not a valid proxy configuration: \(error)")
        }
        try configuration.validate()
        return configuration
    }

    /// Checks every value: names unique, each tenant's upstream exists, hashes are 64 hex
    /// characters, limits in range.
    /// - Throws: ``ProxyConfigurationError`` naming the first problem.
    public func validate() throws(ProxyConfigurationError) {
        guard !upstreams.isEmpty else { throw ProxyConfigurationError("'upstreams' must name at least one upstream") }
        guard !tenants.isEmpty || passThrough != nil else {
            throw ProxyConfigurationError("'tenants' must name at least one tenant (virtual API key), unless 'pass_through' is set")
        }
        guard (1_024...(64 << 20)).contains(maxBodyBytes) else {
            throw ProxyConfigurationError("'max_body_bytes' must be 1024...67108864, got \(maxBodyBytes)")
        }
        for (model, price) in prices {
            guard !model.isEmpty else { throw ProxyConfigurationError("a price must name a model") }
            try price.validate(model: model)
        }
        var upstreamNames = Set<String>()
        for upstream in upstreams {
            try upstream.validate()
            guard upstreamNames.insert(upstream.name).inserted else { throw ProxyConfigurationError("upstream '\(upstream.name)' is named twice") }
        }
        try passThrough?.validate(upstreams: upstreamNames)
        _ = try nearCache?.configuration()
        var tenantNames = Set<String>()
        var hashes = Set<String>()
        for tenant in tenants {
            try tenant.validate()
            guard tenantNames.insert(tenant.name).inserted else { throw ProxyConfigurationError("tenant '\(tenant.name)' is named twice") }
            guard hashes.insert(tenant.keySHA256.lowercased()).inserted else {
                throw ProxyConfigurationError("tenant '\(tenant.name)' has the same key_sha256 as another tenant")
            }
            guard upstreamNames.contains(tenant.upstream) else {
                throw ProxyConfigurationError("tenant '\(tenant.name)' names upstream '\(tenant.upstream)', which is not in 'upstreams'")
            }
        }
    }
}
