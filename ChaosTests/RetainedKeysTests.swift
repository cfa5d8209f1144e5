@testable import ChaosKit
import StampedeCache
import Testing

@Suite("the chaos judge: which keys must still be readable")
struct RetainedKeysTests {
    private func record(_ key: Int, _ source: String, endedAgo: Duration, ageMs: Double, now: ContinuousClock.Instant) -> ChaosRunner.RecordView {
        ChaosRunner.RecordView(key: key, start: now - endedAgo - .milliseconds(5), end: now - endedAgo, source: source, error: nil, ageMs: ageMs, calledUpstream: false, hung: false)
    }

    @Test("an answer computed but not stored (fail-open, noStore) makes no key retained; a stored one does until fresh + stale has passed")
    func uncachedAnswersAreNotRetained() {
        let now = ContinuousClock.now
        let records = [
            // Key 1: stored 3 s ago (expired by design), then served once uncached right now.
            record(1, CacheSource.computed.label, endedAgo: .seconds(3), ageMs: 0, now: now),
            record(1, CacheSource.uncachedRedisUnavailable.label, endedAgo: .milliseconds(10), ageMs: 0, now: now),
            // Key 2: the same with a value computed but not stored.
            record(2, CacheSource.computed.label, endedAgo: .seconds(3), ageMs: 0, now: now),
            record(2, CacheSource.computedNotStored.label, endedAgo: .milliseconds(10), ageMs: 0, now: now),
            // Key 3: a fresh hit 100 ms ago on an entry created 200 ms before it: still retained.
            record(3, CacheSource.freshHit.label, endedAgo: .milliseconds(100), ageMs: 200, now: now),
            // Key 4: a hit on an entry created 1.9 s ago: within 500 ms of expiring, not checked.
            record(4, CacheSource.freshHit.label, endedAgo: .milliseconds(100), ageMs: 1_800, now: now),
        ]
        #expect(ChaosRunner.keysStillRetained(records, now: now) == [3])
    }
}
