import RedisClient
import Synchronization

/// The near-cache's entries, striped by key: what a near hit reads. ``NearCache`` adds the
/// tracked connections that keep them coherent and owns this object; the cache's request path
/// holds it directly.
final class NearCacheEntries: Sendable {
    struct Guarded: Sendable {
        var state: NearCacheState
        var diagnostics = NearCacheDiagnostics()
    }

    /// One stripe of the entries, by key: concurrent hits on different keys rarely wait for each other.
    final class Stripe: Sendable {
        let guarded: Mutex<Guarded>
        init(_ configuration: NearCacheConfiguration) { guarded = Mutex(Guarded(state: NearCacheState(configuration: configuration))) }
    }

    let stripes: [Stripe]
    private let metrics: NearCacheMetrics

    init(configuration: NearCacheConfiguration, metrics: NearCacheMetrics) {
        // Up to 8 stripes, each with an equal share of the bounds (so the sums stay within them);
        // one stripe for small near-caches, whose bounds must hold exactly.
        let count = max(1, min(8, configuration.maxEntries / 1_024, configuration.maxBytes / (1 << 20)))
        var share = configuration
        share.maxEntries = configuration.maxEntries / count
        share.maxBytes = configuration.maxBytes / count
        share.maxEntryBytes = min(configuration.maxEntryBytes, share.maxBytes)
        self.stripes = (0..<count).map { _ in Stripe(share) }
        self.metrics = metrics
    }

    func stripe(for key: String) -> Stripe {
        stripe(hash: key.hashValue)
    }

    func stripe(hash: Int) -> Stripe {
        stripes.count == 1 ? stripes[0] : stripes[Int(UInt(bitPattern: hash) % UInt(stripes.count))]
    }

    /// The entry for `key` if it is held for `generation`, certainly fresh now, and `serves` it
    /// (the caller's last word, e.g. an early refresh that is due). Counted as a hit only then;
    /// otherwise a miss (the request goes to Redis). With `countsHit`, a hit is also counted for
    /// hot-key promotion (see ``drainHits()``).
    func lookup(
        _ key: String, generation: Int64, now: NearInstant = .now, countsHit: Bool = false,
        serves: (NearCacheHit) -> Bool = { _ in true }
    ) -> NearCacheHit? {
        let hash = key.hashValue
        let found = stripe(hash: hash).guarded.withLock { guarded -> NearCacheHit? in
            guard let (slot, hit) = guarded.state.lookup(key, hash: hash, generation: generation, now: now), serves(hit) else {
                guarded.diagnostics.misses += 1
                return nil
            }
            guarded.diagnostics.hits += 1
            if countsHit { guarded.state.countHit(slot: slot) }
            return hit
        }
        if found != nil { metrics.hits.increment() } else { metrics.misses.increment() }
        return found
    }

    /// The near hits counted by ``lookup(_:generation:now:countsHit:serves:)`` since the last call,
    /// by entry: sent with the cache's other hit counts.
    func drainHits() -> [(EntryKeys, Int)] {
        stripes.flatMap { stripe in stripe.guarded.withLock { $0.state.drainHits() } }
    }

    /// The stripes' counters and sizes summed (the process-wide counters are ``NearCache``'s).
    var diagnostics: NearCacheDiagnostics {
        var total = NearCacheDiagnostics()
        for stripe in stripes {
            stripe.guarded.withLock { guarded in
                let part = guarded.diagnostics
                total.hits += part.hits
                total.misses += part.misses
                total.inserts += part.inserts
                total.racedInserts += part.racedInserts
                total.notAdmitted += part.notAdmitted
                total.evictions += part.evictions
                total.entriesInvalidated += part.entriesInvalidated
                total.entries += guarded.state.count
                total.bytes += guarded.state.bytes
            }
        }
        return total
    }
}
