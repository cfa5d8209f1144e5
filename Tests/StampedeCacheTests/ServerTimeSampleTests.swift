@testable import StampedeCache
import Testing

/// The one bound of the server's clock that hits skipping `TIME` (``ServerClock``) and near-cache
/// entries share: exact values at whole and fractional milliseconds, and the fresh deadline agreeing
/// with it.
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

    @Test("a value fresh until L is served only before the deadline, where the real-valued bound is at most L")
    func deadlineAgreesWithTheBound() {
        let sent = ContinuousClock.now
        let sample = ServerTimeSample(serverMillis: 1_500, sent: sent, received: sent)
        let deadline = sample.deadline(before: 2_000)
        #expect(deadline == sent + .milliseconds(499))
        // At whole milliseconds before the deadline the (rounded-up) bound is below the limit.
        #expect(sample.upperBound(at: deadline - .milliseconds(1)) == 1_999)
        #expect(sample.upperBound(at: deadline) == 2_000)
        // A limit at or before the sample's own millisecond + 1 gives no time at all.
        #expect(sample.deadline(before: 1_501) == sent)
        #expect(sample.deadline(before: 1_000) == sent)
    }
}
