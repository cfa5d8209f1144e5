package import NIOCore
package import RedisClient

/// The cache's two plain reads (no script): the fast path's `TIME` + `GET`, and a handed-off value.
/// Everything that writes goes through the typed script commands in `Scripts/Commands/`.
extension RedisClient {
    /// One round trip, no script: `TIME` and `GET` pipelined. Freshness is decided by the server's clock.
    package func fastRead(_ keys: EntryKeys) async throws(RedisError) -> FastRead {
        let (timeReply, value) = try await send(preEncoded: FastReadCommands.time, then: RedisCommand("GET", RedisArgument(keys.value)))
        return try FastRead(time: timeReply, value: value)
    }

    /// The fast read with `clock`: a plain `GET` while the clock has a usable sample of the
    /// server's time (the entry's `now` is then the upper bound of the server's clock when the
    /// reply arrived, so an entry is fresh only if it is fresh by the server's clock); otherwise
    /// `TIME` + `GET`, whose `TIME` becomes the next sample. Never on a cluster (each node has its
    /// own clock): there, always `TIME` + `GET` on the key's node. With `batcher` (built with the
    /// same `clock`), the read may leave in one `MGET` with concurrent reads, with `TIME` in front
    /// when the clock has no usable sample (``ReadBatcher``). A sample that expires while a plain
    /// read is out costs one `TIME` after it, never a second `GET`.
    /// `encodedGet`, when given, is `GET <keys.value>` already encoded (``RecentEntryKeys``).
    package func fastRead(_ keys: EntryKeys, clock: ServerClock, cluster: Bool, batcher: ReadBatcher? = nil, encodedGet: ByteBuffer? = nil) async throws(RedisError) -> FastRead {
        if !cluster, let batcher {
            let read = try await batcher.get(keys.value, encoded: encodedGet)
            let received = ContinuousClock.now
            if let millis = read.serverMillis { return FastRead(value: read.value, now: millis, readAt: received) }
            if let upper = clock.upperBound(at: received) { return FastRead(value: read.value, now: upper, readAt: received) }
            return try await judgedOnLaterTime(read.value, clock: clock)
        } else if !cluster, clock.upperBound(at: .now) != nil {
            let value = try await send(RedisCommand("GET", RedisArgument(keys.value)))
            let received = ContinuousClock.now
            if let upper = clock.upperBound(at: received) {
                return FastRead(value: value, now: upper, readAt: received)
            }
            return try await judgedOnLaterTime(value, clock: clock)
        }
        let sent = ContinuousClock.now
        let (timeReply, value) = try await send(preEncoded: FastReadCommands.time, then: RedisCommand("GET", RedisArgument(keys.value)))
        let received = ContinuousClock.now
        let now = try FastRead.millis(time: timeReply)
        if !cluster { clock.record(serverMillis: now, sent: sent, received: received) }
        return FastRead(value: value, now: now, readAt: received)
    }

    /// A `GET` reply whose clock sample expired while it was out, judged on a `TIME` sent after it
    /// arrived (which becomes the clock's next sample) instead of being read again: the server ran
    /// the `GET` before that `TIME`, so the entry is judged at a server time no earlier than the one
    /// it was read at, and can only seem older than it was (never fresh, or servable stale, for
    /// longer than its policy allows).
    private func judgedOnLaterTime(_ value: RESPValue, clock: ServerClock) async throws(RedisError) -> FastRead {
        let sent = ContinuousClock.now
        let timeReply = try await send(RedisCommand("TIME"))
        let received = ContinuousClock.now
        let now = try FastRead.millis(time: timeReply)
        clock.record(serverMillis: now, sent: sent, received: received)
        return FastRead(value: value, now: now, readAt: received)
    }

    /// The value handed off by the computation with `token`, if it is still there.
    package func handedOff(_ keys: EntryKeys, token: Int64) async throws -> ByteBuffer? {
        guard let blob = try await send("GET", RedisArgument(keys.handoff)).buffer else { return nil }
        let prefix = "hd1 \(token)\n"
        guard blob.readableBytesView.starts(with: prefix.utf8) else { return nil }
        return blob.getSlice(at: blob.readerIndex + prefix.utf8.count, length: blob.readableBytes - prefix.utf8.count)
    }
}
