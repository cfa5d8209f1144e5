import NIOCore
import RedisClient

enum FastReadCommands {
    /// `TIME`, encoded once with hiredis.
    static let time: ByteBuffer = {
        do { return try HiredisEncoder.encode(RedisCommand("TIME")) } catch { preconditionFailure("cannot encode TIME: \(error)") }
    }()
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
        guard let time = timeReply.array, time.count == 2, let seconds = time[0].int, let micros = time[1].int,
              seconds >= 0, seconds < 100_000_000_000, micros >= 0, micros < 1_000_000 else {
            throw RedisError(code: .protocolError, message: "unexpected TIME reply: \(timeReply)")
        }
        let now = seconds * 1_000 + micros / 1_000
        switch value {
        case .null: self = .missing(now: now)
        case .bulkString(let blob): self = StoredEntry(blob: blob, now: now, readAt: readAt).map(FastRead.entry) ?? .unusable
        default: self = .unusable
        }
    }
}
