import Logging
import RedisClient

extension StampedeCache {
    /// Sends the hits counted so far; returns once they, and any flush already under way, are in Redis.
    package func flushHits() async {
        await flushing.run { await self.sendHits() }
    }

    /// Sends the hits counted since the last flush (concurrently, so they pipeline on the connection).
    private func sendHits() async {
        var batch = hits.drain()
        if let nearEntries {
            let nearHits = nearEntries.drainHits()
            if !nearHits.isEmpty {
                // One hot_touch per entry: a key read both from memory and from Redis sums its counts.
                var merged = Dictionary(batch.map { ($0.0.id, $0) }, uniquingKeysWith: { first, second in (first.0, first.1 + second.1) })
                for (entry, count) in nearHits { merged[entry.id, default: (entry, 0)].1 += count }
                batch = Array(merged.values)
            }
        }
        guard !batch.isEmpty, policy.hot.ttl > .zero else { return }
        await withTaskGroup(of: Void.self) { group in
            for (entry, count) in batch {
                group.addTask {
                    do {
                        try await self.redis.execute(HotTouch(entry, hits: count, policy: self.policy))
                    } catch {
                        self.logger.debug("hot-key hit counts not recorded", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Counts a hit for hot-key promotion (sent in batches by the background loop).
    func recordHit(_ entry: EntryKeys) {
        guard policy.hot.ttl > .zero else { return }
        if !hits.record(entry) {
            logger.warning("hot-key hit counts are piling up unsent: run the cache (run() or a ServiceGroup) so they are flushed; further hits are not counted until then", metadata: ["namespace": "\(namespace)", "entries": "\(HitCounter.capacity)"])
        }
    }
}
