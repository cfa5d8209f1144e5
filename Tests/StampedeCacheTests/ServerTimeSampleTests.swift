import NIOCore
@testable import StampedeCache
import Testing

/// The one bound of the server's clock that hits skipping `TIME` (``ServerClock``) and near-cache
/// entries share: exact values at whole and fractional milliseconds, the near-cache's integer form
/// agreeing with it, and the near-cache's fresh deadline agreeing with the bound.
@Suite("server-time sample: one upper bound of the server's clock for L2 hits and the near-cache")
struct ServerTimeSampleTests {
    @Test("the upper bound is TIME + 1 ms + the time since the request was sent, rounded up to whole ms")
    func upperBoundRoundsUp() {
        let sent = ContinuousClock.now
        let sample = ServerTimeSample(serverMillis: 1_000, sent: sent, received: sent + .microseconds(300))
        #expect(sample.roundTrip == .microseconds(300))
        #expect(sample.upperBound(at: sent) == 1_001)
        #expect(sample.upperBound(at: sent + .microseconds(1)) == 1_002)
        #expect(sample.upperBound(at: sent + .milliseconds(1)) == 1_002)
        #expect(sample.upperBound(at: sent + .milliseconds(1) + .nanoseconds(1)) == 1_003)
        #expect(sample.upperBound(at: sent + .seconds(2)) == 3_001)
    }

    @Test("the near-cache's integer bound equals this one at the same offsets, and its fresh deadline agrees with it")
    func nearCacheBoundAgrees() throws {
        let sent = ContinuousClock.now
        let sample = ServerTimeSample(serverMillis: 1_500, sent: sent, received: sent)
        let stored = try #require(StoredEntry(blob: ByteBuffer(string: "sc2 2000 3000 1000 5 1\nvalue"), now: 1_500))
        let nearSent = NearInstant(nanoseconds: 7_000_000_000)
        let hit = NearCacheHit(stored: stored, sentAt: nearSent)
        for offset: Int64 in [0, 1, 999_999, 1_000_000, 1_000_001, 498_999_999, 499_000_000, 2_000_000_000] {
            #expect(hit.serverTimeUpperBound(at: NearInstant(nanoseconds: nearSent.nanoseconds + offset)) == sample.upperBound(at: sent + .nanoseconds(offset)))
        }
        // Fresh until 2000: held strictly before sent + 499 ms, where the (rounded-up) bound is at most 2000.
        #expect(hit.freshDeadline == nearSent.adding(milliseconds: 499))
        #expect(hit.serverTimeUpperBound(at: NearInstant(nanoseconds: hit.freshDeadline.nanoseconds - 1_000_000)) == 1_999)
        #expect(hit.serverTimeUpperBound(at: hit.freshDeadline) == 2_000)
        // Fresh until at most TIME's own millisecond + 1: no time at all.
        for blob in ["sc2 1501 3000 1000 5 1\nvalue", "sc2 1500 3000 1000 5 1\nvalue"] {
            let ending = try #require(StoredEntry(blob: ByteBuffer(string: blob), now: 1_500))
            #expect(NearCacheHit(stored: ending, sentAt: nearSent).freshDeadline == nearSent)
        }
    }
}
