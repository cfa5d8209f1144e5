package import RedisClient

/// `release.lua`: compare-and-delete of the lock. With a failure, the followers are told
/// (`fail|…`, or `fatal|…` when a retry cannot fix it) and the lock may be held a little longer
/// (`hold`) so a failing upstream is not hammered.
///
/// Keys: value, lock (one hash tag). Decodes to whether this token held the lock.
package struct Release: RedisScriptCommand {
    package static var script: RedisScript { CacheScripts.release }
    package let keys: [RedisArgument]
    package let arguments: [RedisArgument]

    package init(_ entry: EntryKeys, token: Int64, channel: String, failure: String?, retryable: Bool = true, hold: Duration = .zero) {
        keys = [RedisArgument(entry.value), RedisArgument(entry.lock)]
        arguments = [
            RedisArgument(token), RedisArgument(channel), RedisArgument(entry.id),
            RedisArgument(failure.map { String($0.prefix(500)) } ?? ""),
            RedisArgument(failure == nil ? "0" : (retryable ? "1" : "2")),
            RedisArgument(hold == .zero ? 0 : hold.wholeMilliseconds),
        ]
    }

    package func decode(_ reply: RESPValue) throws(RedisError) -> Bool {
        guard case .array(let items) = reply, let status = items.first?.string, status == "released" || status == "not_owner" else {
            throw unexpectedReply(reply)
        }
        return status == "released"
    }
}
