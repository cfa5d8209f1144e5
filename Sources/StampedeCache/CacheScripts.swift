package import NIOCore
package import RedisClient

/// The cache's Lua scripts (embedded from `LuaScripts/` at build time) and typed calls to them.
package enum CacheScripts {
    package static let getOrLock = script("get_or_lock")
    package static let commit = script("commit")
    package static let release = script("release")
    package static let invalidateKey = script("invalidate_key")
    package static let hotTouch = script("hot_touch")
    package static let handoff = script("handoff")
    package static let all = [getOrLock, commit, release, invalidateKey, hotTouch, handoff]

    private static func script(_ name: String) -> RedisScript {
        guard let source = EmbeddedLuaScripts.sources[name] else {
            preconditionFailure("LuaScripts/\(name).lua was not embedded at build time")
        }
        return RedisScript(name: name, source: source)
    }
}

/// A stored entry: the string at `P{E}:v` is a header `sc2 <fu> <su> <ct> <cms> <fence>\n` and then
/// the value bytes. `su` (servable-until = fresh-until + the policy's staleFor) bounds every
/// answer; the key's expiry is only how long Redis keeps the bytes (hot keys keep them longer).
package struct StoredEntry: Sendable {
    package var value: ByteBuffer
    package var freshUntil: Int64
    /// Servable-until: no answer is served from this entry at or after this server time.
    package var staleUntil: Int64
    package var createdAt: Int64
    package var computeMillis: Int64
    package var fence: Int64
    /// The Redis server's time when the entry was read.
    package var now: Int64
    /// This process's clock when the entry was read (to age the entry while it is held, e.g. as a
    /// fail-safe fallback: the server clock advances at the same rate).
    package var readAt: ContinuousClock.Instant

    /// The longest `su - ct` a valid header can have: the policy's 10-year limit plus slack.
    package static let maximumSpanMillis: Int64 = 316_000_000_000
    /// Fence tokens stay below 10^15 (15 digits, exact in a Lua double).
    package static let tokenLimit: Int64 = 1_000_000_000_000_000

    /// The server time now, estimated from the read and this process's elapsed time.
    package func serverNow(at instant: ContinuousClock.Instant = .now) -> Int64 {
        now + max(0, (instant - readAt).wholeMilliseconds)
    }

    package var age: Duration { .milliseconds(max(0, now - createdAt)) }
    package var staleness: Duration { .milliseconds(max(0, now - freshUntil)) }
    package var isFresh: Bool { now < freshUntil }

    /// The same entry as it is at `instant` (its server time advanced by the time held here).
    package func aged(to instant: ContinuousClock.Instant = .now) -> StoredEntry {
        var copy = self
        copy.now = serverNow(at: instant)
        copy.readAt = instant
        return copy
    }

    /// Whether the entry may still be served (before its servable-until), at `instant`.
    package func isServable(at instant: ContinuousClock.Instant = .now) -> Bool {
        serverNow(at: instant) < staleUntil
    }

    /// Parses a stored blob; `nil` if its header is not a valid `sc2` header: five decimal fields of
    /// at most 16 digits and 2^53-1 (like the scripts: Lua numbers are doubles), with
    /// `ct <= fu <= su`, `su - ct <=` ``maximumSpanMillis`` and a fence below 10^15 - 1.
    package init?(blob: ByteBuffer, now: Int64, readAt: ContinuousClock.Instant = .now) {
        let bytes = blob.readableBytesView
        guard bytes.starts(with: "sc2 ".utf8), let newline = bytes.prefix(96).firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var fields: [Int64] = []
        fields.reserveCapacity(5)
        var current: Int64 = 0
        var digits = 0
        for byte in bytes[(bytes.startIndex + 4)..<newline] {
            if byte == UInt8(ascii: " ") {
                guard digits > 0 else { return nil }
                fields.append(current)
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 16 {
                current = current * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 9_007_199_254_740_991 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0 else { return nil }
        fields.append(current)
        guard fields.count == 5 else { return nil }
        let (fu, su, ct, cms, fence) = (fields[0], fields[1], fields[2], fields[3], fields[4])
        guard ct <= fu, fu <= su, su - ct <= Self.maximumSpanMillis, fence < Self.tokenLimit - 1 else { return nil }
        let headerLength = newline - bytes.startIndex + 1
        guard let value = blob.getSlice(at: blob.readerIndex + headerLength, length: blob.readableBytes - headerLength) else { return nil }
        self.value = value
        self.freshUntil = fu
        self.staleUntil = su
        self.createdAt = ct
        self.computeMillis = cms
        self.fence = fence
        self.now = now
        self.readAt = readAt
    }
}

/// Which of an entry's keys holds something that is not ours.
package enum EntryKeyRole: String, Sendable {
    case value, lock, fence
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
    /// One of the entry's keys holds something that is not ours: the value key a bad header, no
    /// expiry or another type; the lock or fence key another type. Only that key is repaired.
    case corrupt(reason: String, key: EntryKeyRole)
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
        case .bulkString(let blob): return StoredEntry(blob: blob, now: now).map(FastRead.entry) ?? .unusable
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
            guard items.count >= 4, let blob = items[1].buffer, let su = int(2), let now = int(3),
                  let stored = StoredEntry(blob: blob, now: now), stored.staleUntil == su else { return nil }
            return stored
        }
        switch status {
        case "fresh":
            guard let entry = entry() else { break }
            return .fresh(entry)
        case "early":
            guard let entry = entry(), let token = int(4) else { break }
            return .early(entry, token: token)
        case "stale":
            guard let entry = entry(), let lease = int(4), let token = int(5), let pttl = int(6), pttl >= 0 else { break }
            return .stale(entry, token: lease == 1 ? token : nil, lockRemaining: .milliseconds(pttl))
        case "leader":
            guard let token = int(1), let now = int(3) else { break }
            return .leader(token: token, now: now)
        case "wait":
            guard let holder = int(1), let pttl = int(2), pttl >= 0, let now = int(3) else { break }
            return .wait(holder: holder, lockRemaining: .milliseconds(pttl), now: now)
        case "corrupt":
            guard items.count == 3, let reason = items[1].string, let role = items[2].string.flatMap(EntryKeyRole.init(rawValue:)) else { break }
            return .corrupt(reason: reason, key: role)
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

    /// Compare-and-delete of the lock; returns whether this token held it. With a `failure`, followers
    /// are told (`fail|…`, or `fatal|…` when `retryable` is false: a retry cannot fix it).
    @discardableResult
    package func release(_ keys: EntryKeys, token: Int64, channel: String, failure: String?, retryable: Bool = true, hold: Duration = .zero) async throws -> Bool {
        let reply = try await evalSHA(
            CacheScripts.release,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock)],
            args: [
                RedisArgument(token), RedisArgument(channel), RedisArgument(keys.id),
                RedisArgument(failure ?? ""), RedisArgument(failure == nil ? "0" : (retryable ? "1" : "2")),
                RedisArgument(hold == .zero ? 0 : hold.wholeMilliseconds),
            ]
        )
        guard case .array(let items) = reply, let status = items.first?.string else { throw malformed("release", reply) }
        return status == "released"
    }

    /// Hands a computed value that will not be stored to the followers waiting for this token:
    /// a short-lived `P{E}:d` copy, the lock released, a `deliver|E|token` notice. Returns whether
    /// this token still held the lock (if not, nothing was written).
    @discardableResult
    package func handOff(_ keys: EntryKeys, token: Int64, value: ByteBuffer, reason: String, lifetime: Duration, channel: String) async throws -> Bool {
        let reply = try await evalSHA(
            CacheScripts.handoff,
            keys: [RedisArgument(keys.value), RedisArgument(keys.lock), RedisArgument(keys.handoff)],
            args: [
                RedisArgument(token), RedisArgument(buffer: value), RedisArgument(max(1, lifetime.wholeMilliseconds)),
                RedisArgument(channel), RedisArgument(keys.id), RedisArgument(String(reason.prefix(500))),
            ]
        )
        guard case .array(let items) = reply, let status = items.first?.string, status == "delivered" || status == "not_owner" else {
            throw malformed("handoff", reply)
        }
        return status == "delivered"
    }

    /// The value handed off by the computation with `token`, if it is still there.
    package func handedOff(_ keys: EntryKeys, token: Int64) async throws -> ByteBuffer? {
        guard let blob = try await send("GET", RedisArgument(keys.handoff)).buffer else { return nil }
        let prefix = "hd1 \(token)\n"
        guard blob.readableBytesView.starts(with: prefix.utf8) else { return nil }
        return blob.getSlice(at: blob.readerIndex + prefix.utf8.count, length: blob.readableBytes - prefix.utf8.count)
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
