import NIOCore
import RedisClient

enum FastReadCommands {
    /// `TIME`, encoded once.
    static let time: ByteBuffer = RESPEncoder.encode(RedisCommand("TIME"))
}

/// The fast path's answer: the server time and the stored blob, if any.
package enum FastRead: Sendable {
    case entry(StoredEntry)
    case missing(now: Int64)
    /// Something other than a valid entry is stored (wrong type or bad header): take the script path.
    case unusable

    /// Reads the pipelined `TIME` and `GET` replies. Freshness is decided by the server's clock.
    /// - Throws: ``RedisError/Code/protocolError`` when `TIME` did not answer two integers.
    init(time timeReply: RESPValue, value: RESPValue, readAt: ContinuousClock.Instant = .now) throws(RedisError) {
        self.init(value: value, now: try Self.millis(time: timeReply), readAt: readAt)
    }

    /// Reads a `GET` reply at server time `now` (ms; from `TIME`, or an upper bound of it).
    init(value: RESPValue, now: Int64, readAt: ContinuousClock.Instant) {
        switch value {
        case .null: self = .missing(now: now)
        case .bulkString(let blob): self = StoredEntry(blob: blob, now: now, readAt: readAt).map(FastRead.entry) ?? .unusable
        default: self = .unusable
        }
    }

    /// A `TIME` reply in epoch milliseconds.
    /// - Throws: ``RedisError/Code/protocolError`` when it is not two integers in range.
    static func millis(time timeReply: RESPValue) throws(RedisError) -> Int64 {
        guard let time = timeReply.array, time.count == 2, let seconds = time[0].int, let micros = time[1].int,
              seconds >= 0, seconds < 100_000_000_000, micros >= 0, micros < 1_000_000 else {
            throw RedisError(code: .protocolError, message: "unexpected TIME reply: \(timeReply)")
        }
        return seconds * 1_000 + micros / 1_000
    }
}
