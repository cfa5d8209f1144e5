/// An in-process near-cache (L1) in front of Redis (L2), kept coherent by Redis itself
/// (server-assisted client-side caching, `CLIENT TRACKING`).
///
/// ```swift
/// let cache = try StampedeCache(redis: client, namespace: "llm", policy: policy,
///                               nearCache: NearCacheConfiguration(maxEntries: 50_000, maxBytes: 256 << 20))
/// ```
///
/// A fresh value read from Redis is kept in process memory; later fresh hits are answered from it
/// (``CacheSource/freshHitNear``) without a round trip until Redis reports a change to the entry.
/// Redis tells the process about every change to a key it read (another worker's commit, an
/// invalidation, `SET`/`DEL` by anyone, expiry, eviction), and the entry is dropped. When the
/// connection invalidations arrive on is lost, the node fails over, the cluster map changes or
/// the database is flushed, everything is dropped (the standard contract). Only fresh values are
/// answered from memory, and only while they are fresh by the Redis server's clock (a bound
/// measured on each read, never this machine's wall clock): a stale entry goes to Redis, so
/// stale-while-revalidate and the fail-safe work exactly as without the near-cache.
public struct NearCacheConfiguration: Sendable, Hashable {
    /// How the near-cache decides whether a new value may displace the least recently used one
    /// once it is full.
    public enum Admission: Sendable, Hashable {
        /// TinyLFU: a new value displaces the least recently used one only if its key was asked
        /// for more often recently (a count-min sketch of request frequencies): a burst of one-off
        /// prompts does not flush the hot ones.
        case frequency
        /// Plain LRU: every new value is admitted.
        case always
    }

    /// The most entries held (≥ 1).
    public var maxEntries: Int
    /// The most bytes held: values plus a per-entry overhead for keys and bookkeeping (≥ 1 KiB).
    public var maxBytes: Int
    /// The largest entry held (value plus overhead); larger values are always read from Redis.
    /// Default: an eighth of ``maxBytes``.
    public var maxEntryBytes: Int
    /// How a new value is admitted when the near-cache is full.
    public var admission: Admission

    /// Breaks coherence on purpose: invalidations and losses are ignored (the chaos suite proves
    /// with it that its invariant catches a near-cache that misses invalidations). Never set it.
    package var ignoresInvalidations = false

    /// The bytes counted per entry on top of its value: its keys (as UTF-8) plus this.
    public static let entryOverheadBytes = 160

    /// Creates a configuration.
    public init(maxEntries: Int = 10_000, maxBytes: Int = 64 << 20, maxEntryBytes: Int? = nil, admission: Admission = .frequency) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.maxEntryBytes = maxEntryBytes ?? max(1, maxBytes / 8)
        self.admission = admission
    }

    /// Checks the bounds.
    /// - Throws: ``CacheConfigurationError`` naming the setting.
    public func validate() throws(CacheConfigurationError) {
        guard maxEntries >= 1, maxEntries <= 100_000_000 else {
            throw CacheConfigurationError(setting: "nearCache.maxEntries", problem: "must be between 1 and 100,000,000, got \(maxEntries)")
        }
        guard maxBytes >= 1024 else {
            throw CacheConfigurationError(setting: "nearCache.maxBytes", problem: "must be at least 1024, got \(maxBytes)")
        }
        guard maxEntryBytes >= 1, maxEntryBytes <= maxBytes else {
            throw CacheConfigurationError(setting: "nearCache.maxEntryBytes", problem: "must be between 1 and maxBytes (\(maxBytes)), got \(maxEntryBytes)")
        }
    }
}
