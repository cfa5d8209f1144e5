package import RedisClient

/// `get_or_lock.lua`: reads the entry and, when nobody computes it, takes the fenced lock (or the
/// refresh lease of a stale or early-refreshing entry) in the same atomic step.
///
/// Keys: value, lock, fence (one hash tag). The random draw for XFetch's early refresh is made here
/// so the script stays deterministic for replication.
package struct GetOrLock: RedisScriptCommand {
    package static var script: RedisScript { CacheScripts.getOrLock }
    package let keys: [RedisArgument]
    package let arguments: [RedisArgument]

    /// - Parameter force: take the lock even if a fresh value is there (a forced refresh).
    package init(_ entry: EntryKeys, policy: CachePolicy, force: Bool = false, draw: Double = .random(in: Double.ulpOfOne...1)) {
        keys = [RedisArgument(entry.value), RedisArgument(entry.lock), RedisArgument(entry.fence)]
        arguments = [
            RedisArgument(policy.lockTTL.wholeMilliseconds),
            RedisArgument(policy.fenceRetention.wholeMilliseconds),
            RedisArgument(policy.earlyRefreshBeta),
            RedisArgument(draw),
            RedisArgument(force ? "1" : "0"),
        ]
    }

    package func decode(_ reply: RESPValue) throws(RedisError) -> GetOrLockReply {
        guard case .array(let items) = reply, let status = items.first?.string else { throw unexpectedReply(reply) }
        func int(_ index: Int) -> Int64? { index < items.count ? items[index].int : nil }
        func entry() -> StoredEntry? {
            guard items.count >= 4, let blob = items[1].buffer, let staleUntil = int(2), let now = int(3),
                  let stored = StoredEntry(blob: blob, now: now), stored.staleUntil == staleUntil else { return nil }
            return stored
        }
        switch status {
        case "fresh":
            if let entry = entry() { return .fresh(entry) }
        case "early":
            if let entry = entry(), let token = int(4) { return .early(entry, token: token) }
        case "stale":
            if let entry = entry(), let lease = int(4), let token = int(5), let pttl = int(6), pttl >= 0 {
                return .stale(entry, token: lease == 1 ? token : nil, lockRemaining: .milliseconds(pttl))
            }
        case "leader":
            if let token = int(1), let now = int(3) { return .leader(token: token, now: now) }
        case "wait":
            if let holder = int(1), let pttl = int(2), pttl >= 0, let now = int(3) {
                return .wait(holder: holder, lockRemaining: .milliseconds(pttl), now: now)
            }
        case "corrupt":
            if items.count == 3, let reason = items[1].string, let role = items[2].string.flatMap(EntryKeyRole.init(rawValue:)) {
                return .corrupt(reason: reason, key: role)
            }
        default:
            break
        }
        throw unexpectedReply(reply)
    }
}
