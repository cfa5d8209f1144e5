/// One `TIME` reply from the Redis server (`serverMillis`) with the local monotonic instants its
/// request was sent and its reply received: what bounds the server's clock from then on.
///
/// `TIME` ran between `sent` and `received`, and its reply is in whole milliseconds, so at any
/// later local instant `t` the server's clock is at most `serverMillis + 1 ms + (t - sent)`,
/// whatever this machine's wall clock says. ``ServerClock`` (hits that skip `TIME`) decides
/// freshness with this bound; the near-cache's entries (``NearCacheHit``) apply the same rule in
/// 64-bit nanoseconds of their own clock (``NearInstant``), and a test checks that both agree.
package struct ServerTimeSample: Sendable, Equatable {
    /// The server's clock in the reply (ms since the epoch).
    package var serverMillis: Int64
    /// The local instant the request carrying `TIME` was sent.
    package var sent: ContinuousClock.Instant
    /// The local instant its reply was received.
    package var received: ContinuousClock.Instant

    package init(serverMillis: Int64, sent: ContinuousClock.Instant, received: ContinuousClock.Instant) {
        self.serverMillis = serverMillis
        self.sent = sent
        self.received = received
    }

    /// How far apart the request and its reply were: the sample's uncertainty.
    package var roundTrip: Duration { received - sent }

    /// The upper bound of the server's clock at `instant` (ms, rounded up).
    package func upperBound(at instant: ContinuousClock.Instant) -> Int64 {
        let elapsed = instant - sent
        let (seconds, attoseconds) = elapsed.components
        let millis = seconds * 1_000 + attoseconds / 1_000_000_000_000_000
        let roundedUp = attoseconds % 1_000_000_000_000_000 > 0 ? millis + 1 : millis
        return serverMillis + 1 + roundedUp
    }
}
