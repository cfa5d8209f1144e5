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

    /// The value handed off by the computation with `token`, if it is still there.
    package func handedOff(_ keys: EntryKeys, token: Int64) async throws -> ByteBuffer? {
        guard let blob = try await send("GET", RedisArgument(keys.handoff)).buffer else { return nil }
        let prefix = "hd1 \(token)\n"
        guard blob.readableBytesView.starts(with: prefix.utf8) else { return nil }
        return blob.getSlice(at: blob.readerIndex + prefix.utf8.count, length: blob.readableBytes - prefix.utf8.count)
    }
}
