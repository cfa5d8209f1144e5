public import StampedeCache

/// Embeddings and where they came from.
public struct EmbeddingsResult: Sendable, Hashable {
    /// The vectors, model and usage.
    public var response: EmbeddingsResponse
    /// Where they came from (fresh hit, computed here, received from another worker, ...).
    public var source: CacheSource
    /// Their age by the Redis server's clock.
    public var age: Duration
    /// Whether this call made the upstream request itself (exactly one call per upstream request).
    public var calledUpstream: Bool
    /// Why they are not in the cache, when they were computed and not stored.
    public var notCachedBecause: String?
}
