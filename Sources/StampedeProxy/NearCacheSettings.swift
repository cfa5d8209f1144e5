public import LLMCache
public import StampedeCache

/// The proxy configuration's `near_cache` object: an in-process near-cache in front of Redis for
/// every tenant's exact answers (see ``NearCacheConfiguration``).
///
/// ```json
/// "near_cache": {"max_entries": 50000, "max_bytes": 268435456, "admission": "frequency"}
/// ```
public struct NearCacheSettings: Sendable, Hashable, Codable {
    /// The most entries each namespace holds.
    public var maxEntries: Int
    /// The most bytes each namespace holds.
    public var maxBytes: Int
    /// The largest entry held (default: an eighth of `max_bytes`).
    public var maxEntryBytes: Int?
    /// `frequency` (TinyLFU, the default) or `lru`.
    public var admission: String?

    enum CodingKeys: String, CodingKey {
        case maxEntries = "max_entries"
        case maxBytes = "max_bytes"
        case maxEntryBytes = "max_entry_bytes"
        case admission
    }

    /// Creates settings.
    public init(maxEntries: Int = 10_000, maxBytes: Int = 64 << 20, maxEntryBytes: Int? = nil, admission: String? = nil) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.maxEntryBytes = maxEntryBytes
        self.admission = admission
    }

    /// The library configuration these settings describe.
    /// - Throws: ``ProxyConfigurationError`` naming the bad setting.
    public func configuration() throws(ProxyConfigurationError) -> NearCacheConfiguration {
        let mode: NearCacheConfiguration.Admission
        switch admission ?? "frequency" {
        case "frequency": mode = .frequency
        case "lru": mode = .always
        case let other: throw ProxyConfigurationError("'near_cache.admission' must be \"frequency\" or \"lru\", got \"\(other)\"")
        }
        let configuration = NearCacheConfiguration(maxEntries: maxEntries, maxBytes: maxBytes, maxEntryBytes: maxEntryBytes, admission: mode)
        do {
            try configuration.validate()
        } catch {
            throw ProxyConfigurationError("'near_cache': \(error.setting) \(error.problem)")
        }
        return configuration
    }
}
