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
}
