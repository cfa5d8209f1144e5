package import NIOCore
package import RedisClient

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
