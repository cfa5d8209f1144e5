package import RedisClient

/// `invalidate_key.lua`: deletes the entry's value and publishes `inval|E` so every process drops a
/// local copy. A computation in flight keeps its lock (no second computation right after an
/// invalidation) and may still commit; bump the generation to refuse everything computed before.
///
/// Keys: value, lock (one hash tag). Decodes to whether a value was deleted.
package struct InvalidateKey: RedisScriptCommand {
    package static var script: RedisScript { CacheScripts.invalidateKey }
    package let keys: [RedisArgument]
    package let arguments: [RedisArgument]

    package init(_ entry: EntryKeys, channel: String) {
        keys = [RedisArgument(entry.value), RedisArgument(entry.lock)]
        arguments = [RedisArgument(channel), RedisArgument(entry.id)]
    }

    package func decode(_ reply: RESPValue) throws(RedisError) -> Bool {
        guard case .array(let items) = reply, items.first?.string == "invalidated", items.count >= 2 else { throw unexpectedReply(reply) }
        return items[1].int == 1
    }
}
