/// What Redis told a tracking client about the keys it read (server-assisted client-side caching).
package enum Invalidation: Sendable, Hashable {
    /// These keys changed (written, deleted, expired or evicted) since the tracked connection read them.
    case keys([String])
    /// Every key may have changed (`FLUSHALL` / `FLUSHDB`).
    case everything
}
