package import NIOCore
package import RedisClient

/// `handoff.lua`: hands a computed value that will not be stored to the followers waiting for this
/// token: a short-lived `P{E}:d` copy, the lock released, a `deliver|E|token` notice.
///
/// Keys: value, lock, hand-off (one hash tag). Decodes to whether this token still held the lock
/// (if not, nothing was written).
package struct HandOff: RedisScriptCommand {
    package static var script: RedisScript { CacheScripts.handoff }
    package let keys: [RedisArgument]
    package let arguments: [RedisArgument]

    package init(_ entry: EntryKeys, token: Int64, value: ByteBuffer, reason: String, lifetime: Duration, channel: String) {
        keys = [RedisArgument(entry.value), RedisArgument(entry.lock), RedisArgument(entry.handoff)]
        arguments = [
            RedisArgument(token), RedisArgument(buffer: value), RedisArgument(max(1, lifetime.wholeMilliseconds)),
            RedisArgument(channel), RedisArgument(entry.id), RedisArgument(String(reason.prefix(500))),
        ]
    }

    package func decode(_ reply: RESPValue) throws(RedisError) -> Bool {
        guard case .array(let items) = reply, let status = items.first?.string, status == "delivered" || status == "not_owner" else {
            throw unexpectedReply(reply)
        }
        return status == "delivered"
    }
}
