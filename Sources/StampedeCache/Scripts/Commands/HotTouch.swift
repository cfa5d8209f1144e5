package import RedisClient

/// `hot_touch.lua`: adds a batch of hits to the entry's sliding-window counter and, when the entry
/// is hot, slides its retention.
///
/// Keys: value, fence, hot counter (one hash tag). Decodes to whether the retention slid.
package struct HotTouch: RedisScriptCommand {
    package static var script: RedisScript { CacheScripts.hotTouch }
    package let keys: [RedisArgument]
    package let arguments: [RedisArgument]

    package init(_ entry: EntryKeys, hits: Int, policy: CachePolicy) {
        keys = [RedisArgument(entry.value), RedisArgument(entry.fence), RedisArgument(entry.hot)]
        arguments = [
            RedisArgument(hits),
            RedisArgument(policy.hot.threshold),
            RedisArgument(policy.hot.window.wholeMilliseconds),
            RedisArgument(policy.hot.ttl == .zero ? 0 : policy.hot.ttl.wholeMilliseconds),
            RedisArgument(policy.fenceRetention.wholeMilliseconds),
        ]
    }

    package func decode(_ reply: RESPValue) throws(RedisError) -> Bool {
        guard case .array(let items) = reply, items.count >= 2, let status = items[0].string, status == "hot" || status == "cold" else {
            throw unexpectedReply(reply)
        }
        return items[1].int == 1
    }
}
