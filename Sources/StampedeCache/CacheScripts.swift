package import NIOCore
package import RedisClient

/// The cache's Lua scripts (embedded from `LuaScripts/` at build time) and typed calls to them.
package enum CacheScripts {
    package static let getOrLock = script("get_or_lock")
    package static let commit = script("commit")
    package static let release = script("release")
    package static let invalidateKey = script("invalidate_key")
    package static let all = [getOrLock, commit, release, invalidateKey]

    private static func script(_ name: String) -> RedisScript {
        guard let source = EmbeddedLuaScripts.sources[name] else {
            preconditionFailure("LuaScripts/\(name).lua was not embedded at build time")
        }
        return RedisScript(name: name, source: source)
    }

    /// The entry format written by this version; anything else at a key is treated as corrupt.
    package static let entryFormat = "sc1"
}

/// A stored entry as get-or-lock returns it.
package struct StoredEntry: Sendable {
    package var value: ByteBuffer
    package var freshUntil: Int64
    package var staleUntil: Int64
    package var createdAt: Int64
    package var computeMillis: Int64
    package var fence: Int64
    package var format: String
    package var now: Int64
    package var hot: Bool

    package var age: Duration { .milliseconds(max(0, now - createdAt)) }
    package var staleness: Duration { .milliseconds(max(0, now - freshUntil)) }
}

/// The four answers of get-or-lock.
package enum GetOrLockReply: Sendable {
    case fresh(StoredEntry)
    /// Fresh, but XFetch fired and this caller won the refresh lease.
    case early(StoredEntry, token: Int64)
    /// Stale; `token` is set when this caller won the refresh lease, else `lockRemaining` is the holder's.
    case stale(StoredEntry, token: Int64?, lockRemaining: Duration)
    case leader(token: Int64, now: Int64)
    case wait(holder: Int64, lockRemaining: Duration, now: Int64)
}

package enum CommitReply: Sendable, Equatable {
    case accepted(freshUntil: Int64, staleUntil: Int64, now: Int64)
    case rejected(reason: String, currentFence: Int64)
}

private func malformed(_ script: String, _ reply: RESPValue) -> CacheError {
    .redisFailure(RedisError(code: .protocolError, message: "unexpected reply from \(script).lua: \(reply)"))
}

extension RedisClient {
    package func getOrLock(_ keys: EntryKeys, policy: CachePolicy, countHit: Bool) async throws -> GetOrLockReply {
        let reply = try await evalSHA(
            CacheScripts.getOrLock,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock), RedisArgument(keys.fence), RedisArgument(keys.hot)],
            args: [
                RedisArgument(policy.lockTTL.wholeMilliseconds),
                RedisArgument(policy.hot.threshold),
                RedisArgument(policy.hot.window.wholeMilliseconds),
                RedisArgument(policy.hot.ttl == .zero ? 0 : policy.hot.ttl.wholeMilliseconds),
                RedisArgument(policy.fenceRetention.wholeMilliseconds),
                RedisArgument(policy.earlyRefreshBeta),
                RedisArgument(Double.random(in: Double.ulpOfOne...1)),
                RedisArgument(countHit ? "1" : "0"),
            ]
        )
        guard case .array(let items) = reply, let status = items.first?.string else { throw malformed("get_or_lock", reply) }
        func int(_ index: Int) -> Int64? { index < items.count ? items[index].int : nil }
        func entry() -> StoredEntry? {
            guard items.count >= 10, let value = items[1].buffer, let fu = int(2), let su = int(3), let ct = int(4),
                  let cms = int(5), let fence = int(6), let format = items[7].string, let now = int(8), let hot = int(9)
            else { return nil }
            return StoredEntry(value: value, freshUntil: fu, staleUntil: su, createdAt: ct, computeMillis: cms, fence: fence, format: format, now: now, hot: hot == 1)
        }
        switch status {
        case "fresh":
            guard let entry = entry() else { break }
            return .fresh(entry)
        case "early":
            guard let entry = entry(), let token = int(11) else { break }
            return .early(entry, token: token)
        case "stale":
            guard let entry = entry(), let lease = int(10), let token = int(11), let pttl = int(12) else { break }
            return .stale(entry, token: lease == 1 ? token : nil, lockRemaining: .milliseconds(pttl))
        case "leader":
            guard let token = int(1), let now = int(3) else { break }
            return .leader(token: token, now: now)
        case "wait":
            guard let holder = int(1), let pttl = int(2), let now = int(3) else { break }
            return .wait(holder: holder, lockRemaining: .milliseconds(pttl), now: now)
        default:
            break
        }
        throw malformed("get_or_lock", reply)
    }

    package func commit(
        _ keys: EntryKeys, token: Int64, value: ByteBuffer, policy: CachePolicy, freshFor: Duration,
        computeTime: Duration, channel: String, tags: [String]
    ) async throws -> CommitReply {
        let reply = try await evalSHA(
            CacheScripts.commit,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock), RedisArgument(keys.fence)],
            args: [
                RedisArgument(token),
                RedisArgument(buffer: value),
                RedisArgument(freshFor.wholeMilliseconds),
                RedisArgument(policy.staleFor.wholeMilliseconds),
                RedisArgument(policy.ttlJitter),
                RedisArgument(Double.random(in: 0..<1)),
                RedisArgument(max(0, computeTime.wholeMilliseconds)),
                RedisArgument(CacheScripts.entryFormat),
                RedisArgument(channel),
                RedisArgument(keys.id),
                RedisArgument(policy.fenceRetention.wholeMilliseconds),
                RedisArgument(tags.joined(separator: "\n")),
            ]
        )
        guard case .array(let items) = reply, let status = items.first?.string else { throw malformed("commit", reply) }
        switch status {
        case "ok" where items.count >= 4:
            if let fu = items[1].int, let su = items[2].int, let now = items[3].int {
                return .accepted(freshUntil: fu, staleUntil: su, now: now)
            }
        case "rejected" where items.count >= 3:
            if let reason = items[1].string, let fence = items[2].int { return .rejected(reason: reason, currentFence: fence) }
        default: break
        }
        throw malformed("commit", reply)
    }

    /// Compare-and-delete of the lock; returns whether this token held it.
    @discardableResult
    package func release(_ keys: EntryKeys, token: Int64, channel: String, failure: String?, hold: Duration = .zero) async throws -> Bool {
        let reply = try await evalSHA(
            CacheScripts.release,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock)],
            args: [
                RedisArgument(token), RedisArgument(channel), RedisArgument(keys.id),
                RedisArgument(failure ?? ""), RedisArgument(failure == nil ? "0" : "1"),
                RedisArgument(hold == .zero ? 0 : hold.wholeMilliseconds),
            ]
        )
        guard case .array(let items) = reply, let status = items.first?.string else { throw malformed("release", reply) }
        return status == "released"
    }

    package func invalidateEntry(_ keys: EntryKeys, channel: String) async throws -> Bool {
        let reply = try await evalSHA(
            CacheScripts.invalidateKey,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock)],
            args: [RedisArgument(channel), RedisArgument(keys.id)]
        )
        guard case .array(let items) = reply, items.first?.string == "invalidated", items.count >= 2 else { throw malformed("invalidate_key", reply) }
        return items[1].int == 1
    }
}
