/// Exact counters of one cache's near-cache since it was created (``StampedeCache/nearCacheDiagnostics``).
public struct NearCacheDiagnostics: Sendable, Hashable {
    /// Fresh hits answered from process memory.
    public var hits = 0
    /// Lookups that found nothing fresh in memory, or an entry whose early refresh (XFetch) was
    /// due: the request went to Redis.
    public var misses = 0
    /// Values read from Redis and now held.
    public var inserts = 0
    /// Reads that raced an invalidation or a flush, and were not held.
    public var racedInserts = 0
    /// Values not admitted (TinyLFU) or too large.
    public var notAdmitted = 0
    /// Entries dropped to stay within the bounds.
    public var evictions = 0
    /// Keys named by invalidation messages from Redis.
    public var invalidationsReceived = 0
    /// Entries dropped because Redis (or a write by this process) invalidated them.
    public var entriesInvalidated = 0
    /// Times everything was dropped (connection lost, topology change, server flush, close).
    public var flushes = 0
    /// Tracking connections opened (one per node, again after each loss).
    public var trackingConnectionsOpened = 0
    /// Entries held now.
    public var entries = 0
    /// Bytes held now (values plus overhead).
    public var bytes = 0
}
