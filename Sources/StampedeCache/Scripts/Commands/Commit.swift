package import NIOCore
package import RedisClient

/// `commit.lua`: stores a computed value if `token` still holds the lock and is not older than the
/// fence, releases the lock and publishes `ready` to the waiting followers, all in one step.
///
/// Keys: value, lock, fence (one hash tag).
package struct Commit: RedisScriptCommand {
    package static var script: RedisScript { CacheScripts.commit }
    package let keys: [RedisArgument]
    package let arguments: [RedisArgument]

    /// - Parameters:
    ///   - freshFor: this value's freshness (a computation may shorten the policy's).
    ///   - computeTime: how long the computation took (kept for XFetch's early refresh).
    ///   - channel: the namespace's notice channel.
    package init(
        _ entry: EntryKeys, token: Int64, value: ByteBuffer, policy: CachePolicy, freshFor: Duration,
        computeTime: Duration, channel: String, jitterDraw: Double = .random(in: 0..<1)
    ) {
        keys = [RedisArgument(entry.value), RedisArgument(entry.lock), RedisArgument(entry.fence)]
        arguments = [
            RedisArgument(token),
            RedisArgument(buffer: value),
            RedisArgument(freshFor.wholeMilliseconds),
            RedisArgument(policy.staleFor.wholeMilliseconds),
            RedisArgument(policy.ttlJitter),
            RedisArgument(jitterDraw),
            RedisArgument(max(0, computeTime.wholeMilliseconds)),
            RedisArgument(channel),
            RedisArgument(entry.id),
            RedisArgument(policy.fenceRetention.wholeMilliseconds),
        ]
    }

    package func decode(_ reply: RESPValue) throws(RedisError) -> CommitReply {
        guard case .array(let items) = reply, let status = items.first?.string else { throw unexpectedReply(reply) }
        switch status {
        case "ok" where items.count >= 4:
            if let freshUntil = items[1].int, let staleUntil = items[2].int, let now = items[3].int {
                return .accepted(freshUntil: freshUntil, staleUntil: staleUntil, now: now)
            }
        case "rejected" where items.count >= 3:
            if let reason = items[1].string, let fence = items[2].int { return .rejected(reason: reason, currentFence: fence) }
        default:
            break
        }
        throw unexpectedReply(reply)
    }
}
