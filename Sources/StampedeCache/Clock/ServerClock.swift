import RedisClient
import Synchronization

/// What this process knows of the Redis server's clock: the latest `TIME` reply with the local
/// monotonic instants its request was sent and its reply received (a ``ServerTimeSample``).
///
/// From one sample, the server's clock at any later local instant `t` lies between
/// `server + (t - received)` and `server + 1 ms + (t - sent)` (the reply is in whole
/// milliseconds, and `TIME` ran between the two instants), whatever this machine's wall clock
/// says. A fresh hit may then skip `TIME`: an entry whose fresh-until is past the upper bound is
/// fresh by the server's clock. A sample is used for ``lifetime`` (1 s) only (a server whose clock is
/// stepped is believed within that), only if its round trip was at most ``maximumUncertainty`` (by default),
/// and never after the client may be talking to another server (``invalidate()``).
package final class ServerClock: Sendable {
    /// How long a sample is used before a hit asks for `TIME` again (default).
    static let defaultLifetime: Duration = .seconds(1)
    /// Samples whose round trip took longer are not used (their bound would be too loose).
    static let maximumUncertainty: Duration = .milliseconds(10)

    private let sample = Mutex<ServerTimeSample?>(nil)
    private let lifetimeNanoseconds = Atomic<Int64>(ServerClock.defaultLifetime.nanosecondsClamped)
    private let uncertaintyNanoseconds = Atomic<Int64>(ServerClock.maximumUncertainty.nanosecondsClamped)

    /// How long a sample is used.
    package var lifetime: Duration { .nanoseconds(lifetimeNanoseconds.load(ordering: .relaxed)) }

    /// Changes how long a sample is used (tests that count commands make it long).
    package func setLifetime(_ lifetime: Duration) {
        lifetimeNanoseconds.store(lifetime.nanosecondsClamped, ordering: .relaxed)
    }

    /// Changes the longest round trip whose sample is used (tests that count commands on a loaded
    /// machine make it long, so that their first `TIME` is a sample however slow its round trip).
    package func setMaximumUncertainty(_ uncertainty: Duration) {
        uncertaintyNanoseconds.store(uncertainty.nanosecondsClamped, ordering: .relaxed)
    }

    package init() {}

    /// Records a `TIME` reply (`serverMillis`) read between `sent` and `received`.
    package func record(serverMillis: Int64, sent: ContinuousClock.Instant, received: ContinuousClock.Instant) {
        guard (received - sent).nanosecondsClamped <= uncertaintyNanoseconds.load(ordering: .relaxed) else { return }
        sample.withLock { current in
            // The tighter of two recent samples gives the tighter bound; an old one is replaced.
            if let existing = current, received - existing.received < lifetime / 2,
               existing.roundTrip <= received - sent { return }
            current = ServerTimeSample(serverMillis: serverMillis, sent: sent, received: received)
        }
    }

    /// The upper bound of the server's clock at `instant` (ms), or `nil` without a usable sample.
    package func upperBound(at instant: ContinuousClock.Instant) -> Int64? {
        sample.withLock { sample -> Int64? in
            guard let sample, instant >= sample.received, instant - sample.received < lifetime else { return nil }
            return sample.upperBound(at: instant)
        }
    }

    /// Forgets the sample (the client may now be talking to another server).
    package func invalidate() {
        sample.withLock { $0 = nil }
    }
}
