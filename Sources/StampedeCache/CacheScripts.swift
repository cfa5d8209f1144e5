package import NIOCore
package import RedisClient

/// The cache's Lua scripts (embedded from `LuaScripts/` at build time) and typed calls to them.
package enum CacheScripts {
    package static let getOrLock = script("get_or_lock")
    package static let commit = script("commit")
    package static let release = script("release")
    package static let invalidateKey = script("invalidate_key")
    package static let hotTouch = script("hot_touch")
    package static let all = [getOrLock, commit, release, invalidateKey, hotTouch]

    private static func script(_ name: String) -> RedisScript {
        guard let source = EmbeddedLuaScripts.sources[name] else {
            preconditionFailure("LuaScripts/\(name).lua was not embedded at build time")
        }
        return RedisScript(name: name, source: source)
    }
}

/// A stored entry: the string at `P{E}:v` is a header `sc1 <fu> <ct> <cms> <fence>\n` and then the
/// value bytes; the key's expiry is the entry's retention (stale-until).
package struct StoredEntry: Sendable {
    package var value: ByteBuffer
    package var freshUntil: Int64
    /// Stale-until (the key's expiry), when known (`nil` on the fast path, which does not read it).
    package var staleUntil: Int64?
    package var createdAt: Int64
    package var computeMillis: Int64
    package var fence: Int64
    /// The Redis server's time when the entry was read.
    package var now: Int64

    package var age: Duration { .milliseconds(max(0, now - createdAt)) }
    package var staleness: Duration { .milliseconds(max(0, now - freshUntil)) }
    package var isFresh: Bool { now < freshUntil }

    /// Parses a stored blob; `nil` if its header is not a valid `sc1` header.
    package init?(blob: ByteBuffer, now: Int64, staleUntil: Int64?) {
        let bytes = blob.readableBytesView
        guard bytes.starts(with: "sc1 ".utf8), let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var fields: [Int64] = []
        var current: Int64 = 0
        var digits = 0
        for byte in bytes[(bytes.startIndex + 4)..<newline] {
            if byte == UInt8(ascii: " ") {
                guard digits > 0 else { return nil }
                fields.append(current)
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 16 {
                // At most 16 digits and 2^53-1, like the scripts (Lua numbers are doubles).
                current = current * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 9_007_199_254_740_991 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0 else { return nil }
        fields.append(current)
        guard fields.count == 4 else { return nil }
        let headerLength = newline - bytes.startIndex + 1
        guard let value = blob.getSlice(at: blob.readerIndex + headerLength, length: blob.readableBytes - headerLength) else { return nil }
        self.value = value
        self.freshUntil = fields[0]
        self.createdAt = fields[1]
        self.computeMillis = fields[2]
        self.fence = fields[3]
        self.now = now
        self.staleUntil = staleUntil
    }
}

/// The answers of get-or-lock.
package enum GetOrLockReply: Sendable {
    case fresh(StoredEntry)
    /// Fresh, but XFetch fired and this caller won the refresh lease.
    case early(StoredEntry, token: Int64)
    /// Stale; `token` is set when this caller won the refresh lease, else `lockRemaining` is the holder's.
    case stale(StoredEntry, token: Int64?, lockRemaining: Duration)
    case leader(token: Int64, now: Int64)
    case wait(holder: Int64, lockRemaining: Duration, now: Int64)
    /// The value at the key is not a valid entry (bad header, no expiry).
    case corrupt(reason: String)
}

package enum CommitReply: Sendable, Equatable {
    case accepted(freshUntil: Int64, staleUntil: Int64, now: Int64)
    case rejected(reason: String, currentFence: Int64)
}

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

private func malformed(_ script: String, _ reply: RESPValue) -> CacheError {
    .redisFailure(RedisError(code: .protocolError, message: "unexpected reply from \(script).lua: \(reply)"))
}

extension RedisClient {
    /// One round trip, no script: `TIME` and `GET` pipelined. Freshness is decided by the server's clock.
    package func fastRead(_ keys: EntryKeys) async throws(RedisError) -> FastRead {
        let (timeReply, value) = try await send(preEncoded: FastReadCommands.time, then: RedisCommand("GET", RedisArgument(keys.value)))
        guard let time = timeReply.array, time.count == 2, let seconds = time[0].int, let micros = time[1].int else {
            throw RedisError(code: .protocolError, message: "unexpected TIME reply: \(timeReply)")
        }
        let now = seconds * 1_000 + micros / 1_000
        switch value {
        case .null: return .missing(now: now)
        case .bulkString(let blob): return StoredEntry(blob: blob, now: now, staleUntil: nil).map(FastRead.entry) ?? .unusable
        default: return .unusable
        }
    }

    package func getOrLock(_ keys: EntryKeys, policy: CachePolicy, force: Bool = false) async throws -> GetOrLockReply {
        let reply = try await evalSHA(
            CacheScripts.getOrLock,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock), RedisArgument(keys.fence)],
            args: [
                RedisArgument(policy.lockTTL.wholeMilliseconds),
                RedisArgument(policy.fenceRetention.wholeMilliseconds),
                RedisArgument(policy.earlyRefreshBeta),
                RedisArgument(Double.random(in: Double.ulpOfOne...1)),
                RedisArgument(force ? "1" : "0"),
            ]
        )
        guard case .array(let items) = reply, let status = items.first?.string else { throw malformed("get_or_lock", reply) }
        func int(_ index: Int) -> Int64? { index < items.count ? items[index].int : nil }
        func entry() -> StoredEntry? {
            guard items.count >= 4, let blob = items[1].buffer, let su = int(2), let now = int(3) else { return nil }
            return StoredEntry(blob: blob, now: now, staleUntil: su)
        }
        switch status {
        case "fresh":
            guard let entry = entry() else { break }
            return .fresh(entry)
        case "early":
            guard let entry = entry(), let token = int(4) else { break }
            return .early(entry, token: token)
        case "stale":
            guard let entry = entry(), let lease = int(4), let token = int(5), let pttl = int(6) else { break }
            return .stale(entry, token: lease == 1 ? token : nil, lockRemaining: .milliseconds(pttl))
        case "leader":
            guard let token = int(1), let now = int(3) else { break }
            return .leader(token: token, now: now)
        case "wait":
            guard let holder = int(1), let pttl = int(2), let now = int(3) else { break }
            return .wait(holder: holder, lockRemaining: .milliseconds(pttl), now: now)
        case "corrupt":
            return .corrupt(reason: items.count > 1 ? items[1].string ?? "" : "")
        default:
            break
        }
        throw malformed("get_or_lock", reply)
    }

    package func commit(
        _ keys: EntryKeys, token: Int64, value: ByteBuffer, policy: CachePolicy, freshFor: Duration,
        computeTime: Duration, channel: String
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
                RedisArgument(channel),
                RedisArgument(keys.id),
                RedisArgument(policy.fenceRetention.wholeMilliseconds),
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

    /// Adds `hits` to the entry's sliding-window hit counter; slides its retention if it is hot.
    /// Returns whether the retention slid.
    @discardableResult
    package func hotTouch(_ keys: EntryKeys, hits: Int, policy: CachePolicy) async throws -> Bool {
        let reply = try await evalSHA(
            CacheScripts.hotTouch,
            keys: [RedisArgument(keys.value), RedisArgument(keys.fence), RedisArgument(keys.hot)],
            args: [
                RedisArgument(hits),
                RedisArgument(policy.hot.threshold),
                RedisArgument(policy.hot.window.wholeMilliseconds),
                RedisArgument(policy.hot.ttl == .zero ? 0 : policy.hot.ttl.wholeMilliseconds),
                RedisArgument(policy.fenceRetention.wholeMilliseconds),
            ]
        )
        guard case .array(let items) = reply, items.count >= 2, let status = items[0].string, status == "hot" || status == "cold" else {
            throw malformed("hot_touch", reply)
        }
        return items[1].int == 1
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
