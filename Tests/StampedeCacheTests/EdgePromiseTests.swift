import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Synchronization
import Testing

/// The cache's promises at the edges: no leaked lock after any commit error, fence tokens that stay
/// exact, foreign data that never costs a valid value, staleness bounded by the policy whatever the
/// hot-key retention, and answers paid for once even when they are not stored.
@Suite("StampedeCache: promises at the edges", .sharedRedis)
struct EdgePromiseTests {
    // MARK: Locks and commits

    @Test("a per-call freshFor of 0, below 1 ms or over 10 years is refused before anything is locked")
    func perCallTTLValidated() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        for bad: Duration in [.zero, .milliseconds(-5), .microseconds(500), .seconds(11 * 365 * 86_400)] {
            do {
                _ = try await worker.cache.value(for: "k", options: CacheRequestOptions(freshFor: bad), compute: upstream.compute("v"))
                Issue.record("freshFor \(bad) was accepted")
            } catch let error as CacheError where error.code == .invalidOption {
                #expect(error.option == "freshFor")
            }
        }
        await #expect(throws: CacheError.self) {
            _ = try await worker.cache.value(for: "k", options: CacheRequestOptions(maxStale: .seconds(-1)), compute: upstream.compute("v"))
        }
        let entry = try await worker.cache.entryKeys(for: "k")
        #expect(try await worker.client.send("EXISTS", RedisArgument(entry.lock), RedisArgument(entry.value)).int == 0)
        #expect(upstream.count == 0)
        // A valid call right after computes at once: nothing was left locked.
        #expect(try await worker.cache.value(for: "k", options: CacheRequestOptions(freshFor: .milliseconds(1)), compute: upstream.compute("v")).source == .computed)
        await worker.stop()
    }

    @Test("a commit that Redis refuses (OOM) releases the lock at once, and the caller is told the value was not cached")
    func failedCommitReleasesTheLock() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy())
            let admin = try makeClient(server.url)
            let result = try await worker.cache.value(for: "k") {
                // Redis runs out of memory while the value is computed: the commit's SET is refused.
                _ = try await admin.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
                _ = try await admin.send("CONFIG", "SET", "maxmemory", "1")
                return Array("paid for".utf8)
            }
            _ = try await admin.send("CONFIG", "SET", "maxmemory", "0")
            #expect(String(decoding: result.value, as: UTF8.self) == "paid for")
            #expect(result.source == .computed)
            #expect(result.notCachedBecause?.contains("OOM command not allowed") == true, "\(result.notCachedBecause ?? "nil")")
            #expect(worker.cache.diagnostics.failedCommits == 1)
            let entry = try await worker.cache.entryKeys(for: "k")
            #expect(try await admin.send("EXISTS", RedisArgument(entry.lock)).int == 0, "the lock was released, not left to expire")
            #expect(try await admin.send("EXISTS", RedisArgument(entry.value)).int == 0)
            // The next caller is not made to wait for a lock nobody holds.
            let next = try await worker.cache.value(for: "k") { Array("stored".utf8) }
            #expect(next.source == .computed)
            #expect(next.notCachedBecause == nil)
            await admin.close()
            await worker.stop()
        }
    }

    @Test("fence counter at 2^53 - 2, at 10^15 - 1 or not an integer: the next token is reset above the entry's fence, commits, and is unique")
    func fenceTokensStayExact() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy(freshFor: .seconds(60)))
        let upstream = Upstream()
        for (index, counter) in ["9007199254740990", "999999999999999", "1e3", "x"].enumerated() {
            let key = "k\(index)"
            let entry = try await worker.cache.entryKeys(for: key)
            _ = try await worker.client.send("SET", RedisArgument(entry.fence), RedisArgument(counter))
            let first = try await worker.cache.value(for: key, compute: upstream.compute("v1"))
            #expect(first.source == .computed && first.notCachedBecause == nil, "counter \(counter): \(first.notCachedBecause ?? "")")
            #expect(try await worker.client.send("GET", RedisArgument(entry.fence)).string == "1")
            let forced = try await worker.cache.value(for: key, options: CacheRequestOptions(forceRefresh: true), compute: upstream.compute("v2"))
            #expect(forced.source == .computed && forced.notCachedBecause == nil)
            let blob = try #require(try await worker.client.get(entry.value))
            #expect(StoredEntry(blob: blob, now: 0)?.fence == 2, "tokens 1 then 2, both committed")
            #expect(try await worker.client.send("EXISTS", RedisArgument(entry.lock)).int == 0)
        }
        await worker.stop()
    }

    @Test("a hash in the lock or fence key is repaired alone: the stale value is still served and never deleted")
    func foreignLockOrFenceKeepsTheValue() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy(freshFor: .milliseconds(50), staleFor: .seconds(60)))
        let upstream = Upstream()
        for (index, role) in ["lock", "fence"].enumerated() {
            let key = "k\(index)"
            _ = try await worker.cache.value(for: key, compute: upstream.compute("original"))
            let entry = try await worker.cache.entryKeys(for: key)
            let blob = try #require(try await worker.client.get(entry.value))
            try await Task.sleep(for: .milliseconds(80))  // stale now: the next call needs the lock
            let broken = role == "lock" ? entry.lock : entry.fence
            _ = try await worker.client.send("DEL", RedisArgument(broken))
            _ = try await worker.client.send("HSET", RedisArgument(broken), "a", "b")
            let served = try await worker.cache.value(for: key, compute: upstream.compute("refreshed"))
            #expect(String(decoding: served.value, as: UTF8.self) == "original", "\(role): the stale value is served")
            #expect(served.source == .staleHit(.startedHere), "\(role): \(served.source)")
            #expect(try await worker.client.send("TYPE", RedisArgument(broken)).string != "hash", "\(role) key repaired")
            await worker.cache.waitForBackgroundWork()  // the background refresh
            let after = try #require(try await worker.client.get(entry.value))
            let refreshed = try #require(StoredEntry(blob: after, now: 0))
            #expect(after != blob)
            #expect(String(buffer: refreshed.value) == "refreshed")
        }
        #expect(worker.cache.diagnostics.corruptEntries == 2)
        await worker.stop()
    }

    @Test("an old-format header, one claiming centuries of freshness, or a stale entry without expiry is never served: it is repaired and recomputed")
    func entryWithoutExpiryIsNotServedForever() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        let now = try await serverMillis(worker.client) / 1_000 * 1_000  // whole seconds, as before
        let blobs = [
            "sc1 9999999999999 \(now) 0 1\nold-format forever",  // the old header, no TTL
            "sc2 9999999999999 9999999999999 \(now) 0 1\ncenturies",  // 270 years "fresh"
            // A plausible header whose stale window has begun, with no TTL: the script repairs it. (While
            // such an entry is fresh the fast path serves it: servability comes from the header's
            // fresh-until and servable-until, never from the key's expiry, so it cannot outlive them.)
            "sc2 \(now - 1_000) \(now + 60_000) \(now - 2_000) 0 1\nno expiry",
        ]
        for (index, blob) in blobs.enumerated() {
            let key = "k\(index)"
            let entry = try await worker.cache.entryKeys(for: key)
            _ = try await worker.client.send("SET", RedisArgument(entry.value), RedisArgument(blob))
            let result = try await worker.cache.value(for: key, compute: upstream.compute("recomputed"))
            #expect(result.source == .computed, "\(blob.prefix(30)): \(result.source)")
            #expect(String(decoding: result.value, as: UTF8.self) == "recomputed")
            #expect(try await worker.client.send("PTTL", RedisArgument(entry.value)).int ?? -1 > 0)
        }
        await worker.stop()
    }

    // MARK: Staleness is bounded by the policy

    @Test("staleFor 0 with hot keys: retention slides, yet nothing is served past freshFor")
    func hotRetentionNeverServesPastStaleFor() async throws {
        let policy = testPolicy(freshFor: .seconds(1), staleFor: .zero, hot: .init(threshold: 1, window: .seconds(60), ttl: .seconds(60)))
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy)
        let upstream = Upstream()
        for _ in 0..<14 { _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1")) }
        await worker.cache.flushHits()
        let entry = try await worker.cache.entryKeys(for: "k")
        // On a machine slower than freshFor the loop above may outlive the entry: its recomputed
        // commit resets the expiry after the hits were flushed. Hit and flush until the retention
        // of the entry now stored has slid (each round is one hit of a hot key: it slides).
        try await waitUntil("hot: retention slid to the hot TTL") {
            _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1"))
            await worker.cache.flushHits()
            return try await worker.client.send("PTTL", RedisArgument(entry.value)).int ?? 0 > 50_000
        }
        let blob = try #require(try await worker.client.get(entry.value))
        let stored = try #require(StoredEntry(blob: blob, now: 0))
        #expect(stored.staleUntil == stored.freshUntil, "staleFor 0: servable until fresh-until")
        try await waitUntilServerClockPasses(stored.freshUntil, worker.client, "the entry's fresh-until has passed on the server clock")
        let after = try await worker.cache.value(for: "k", compute: upstream.compute("v2"))
        #expect(after.source == .computed, "not \(after.source)")
        #expect(String(decoding: after.value, as: UTF8.self) == "v2")
        await worker.stop()
    }

    @Test("a stale copy held while the refresh runs is not served as a fail-safe once it is past fresh + stale")
    func failSafeFallbackIsBoundedToo() async throws {
        let policy = testPolicy(freshFor: .milliseconds(100), staleFor: .milliseconds(200), computeTimeout: .seconds(2), lockTTL: .seconds(3))
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy)
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1"))
        try await Task.sleep(for: .milliseconds(150))  // stale, within stale window
        // maxStale 0: the caller refreshes first and would fall back to the stale copy on failure, but
        // the failure comes after the copy's servable-until has passed.
        await #expect(throws: UpstreamDown.self) {
            _ = try await worker.cache.value(for: "k", options: CacheRequestOptions(maxStale: .zero), compute: upstream.failing(after: .milliseconds(400)))
        }
        await worker.stop()
    }

    @Test("failSafeThrottle longer than the stale window: the throttle ends with the stale copy, so nobody waits it out")
    func throttleEndsWithTheStaleCopy() async throws {
        let policy = testPolicy(freshFor: .milliseconds(100), staleFor: .seconds(2), failSafeThrottle: .seconds(5))
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy)
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1"))
        let entry = try await worker.cache.entryKeys(for: "k")
        let blob = try #require(try await worker.client.get(entry.value))
        let stored = try #require(StoredEntry(blob: blob, now: 0))
        try await Task.sleep(for: .milliseconds(150))
        let stale = try await worker.cache.value(for: "k", compute: upstream.failing())
        #expect(stale.source == .staleHit(.startedHere))
        await worker.cache.waitForBackgroundWork()  // the failed refresh has released its lease with the throttle
        // TIME first: the lock's PTTL, read after it, can only be smaller than at that instant.
        let serverNow = try await serverMillis(worker.client)
        let pttl = try await worker.client.send("PTTL", RedisArgument(entry.lock)).int ?? -2
        #expect(pttl <= max(0, stored.staleUntil - serverNow) + 1, "throttle \(pttl) ms, stale copy left \(stored.staleUntil - serverNow) ms")
        await worker.stop()
    }

    // MARK: Herds share what they paid for

    @Test("a non-cacheable answer: 3 workers x 30 callers -> exactly 1 computation, all 90 get it, nothing stored")
    func nonCacheableAnswerIsPaidOnce() async throws {
        let url = try TestRedis.sharedURL
        let workers = try await Worker.fleet(3, url: url, namespace: uniqueNamespace(), policy: testPolicy())
        let calls = Atomic<Int>(0)
        let produce: @Sendable () async throws -> Computed<[UInt8]> = {
            calls.add(1, ordering: .relaxed)
            // Hold the answer until both other workers are waiting for it.
            try await eventually("both other workers follow") {
                workers.filter { $0.cache.diagnostics.followerWaits > 0 }.count >= 2
            }
            return .deliverWithoutStoring(Array("truncated answer".utf8), reason: "finish_reason length")
        }
        let results = try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
            for worker in workers {
                for _ in 0..<30 { group.addTask { try await worker.cache.value(for: "k", produce: produce) } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(calls.load(ordering: .relaxed) == 1)
        #expect(results.count == 90)
        #expect(results.allSatisfy { String(decoding: $0.value, as: UTF8.self) == "truncated answer" })
        #expect(results.allSatisfy { $0.notCachedBecause == "finish_reason length" })
        let sources = Dictionary(grouping: results, by: \.source.label).mapValues(\.count)
        #expect(sources == ["computed_not_stored": 1, "joined_in_process": 29, "received_from_other_worker": 60], "\(sources)")
        #expect(results.filter(\.computedHere).count == 1)
        #expect(workers.map(\.cache.diagnostics.handoffsReceived).reduce(0, +) == 2)
        let entry = try await workers[0].cache.entryKeys(for: "k")
        #expect(try await workers[0].client.send("EXISTS", RedisArgument(entry.value), RedisArgument(entry.lock)).int == 0)
        for worker in workers { await worker.stop() }
    }

    @Test("a failure a retry can fix gives the followers one single-flight round (by default); one a retry cannot fix reaches them at once")
    func followersRetryOnlyWhatARetryCanFix() async throws {
        struct BadRequest: RetryClassifiedError { var retryCanSucceed: Bool { false } }
        let url = try TestRedis.sharedURL
        for retryable in [true, false] {
            let workers = try await Worker.fleet(3, url: url, namespace: uniqueNamespace(), policy: testPolicy())
            let calls = Atomic<Int>(0)
            let compute: @Sendable () async throws -> [UInt8] = {
                let call = calls.add(1, ordering: .relaxed).newValue
                if call == 1 {
                    try await eventually("both other workers follow") {
                        workers.filter { $0.cache.diagnostics.followerWaits > 0 }.count >= 2
                    }
                    if retryable { throw UpstreamDown() } else { throw BadRequest() }
                }
                return Array("second round".utf8)
            }
            let results = await withTaskGroup(of: Result<CacheResult<[UInt8]>, any Error>.self) { group in
                for worker in workers {
                    for _ in 0..<10 {
                        group.addTask {
                            do { return .success(try await worker.cache.value(for: "k", compute: compute)) } catch { return .failure(error) }
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let failures = results.filter { if case .failure = $0 { return true } else { return false } }.count
            if retryable {
                #expect(calls.load(ordering: .relaxed) == 2, "one retry round, one computation fleet-wide")
                #expect(failures == 10, "only the first leader's process sees the failure")
            } else {
                #expect(calls.load(ordering: .relaxed) == 1)
                #expect(failures == 30)
            }
            for worker in workers { await worker.stop() }
        }
    }

    @Test("callers that join a computation in the same process are told so: one .computed, the rest .joinedInProcess")
    func joinedCallsAreNotComputed() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        let results = try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
            for _ in 0..<20 { group.addTask { try await worker.cache.value(for: "k", compute: upstream.compute("v", latency: .milliseconds(200))) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(upstream.count == 1)
        #expect(results.filter { $0.source == .computed }.count == 1)
        #expect(results.filter { $0.source == .joinedInProcess && $0.coalesced && !$0.computedHere }.count == 19)
        await worker.stop()
    }
}
