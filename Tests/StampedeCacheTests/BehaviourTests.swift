import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Testing

@Suite("StampedeCache: hot keys, invalidation, bad input, Redis faults", .sharedRedis)
struct BehaviourTests {
    /// Remaining life of the entry (its retention, stale-until) and its fresh-until, read from Redis.
    private func retention(_ worker: Worker, _ key: String) async throws -> (pttl: Int64, freshUntil: Int64) {
        let entry = try await worker.cache.entryKeys(for: key)
        let pttl = try await worker.client.send("PTTL", RedisArgument(entry.value)).int ?? -3
        let blob = try #require(try await worker.client.get(entry.value))
        let stored = try #require(StoredEntry(blob: blob, now: 0))
        return (pttl, stored.freshUntil)
    }

    @Test("hot keys: below the threshold retention does not slide; at it, retention slides by the hot TTL and freshness does not")
    func hotKeyPromotion() async throws {
        // Fresh for 3 s: the hits below must all land while the value is fresh, also on a loaded machine.
        let policy = testPolicy(
            freshFor: .seconds(3), staleFor: .seconds(2),
            hot: .init(threshold: 3, window: .seconds(30), ttl: .seconds(120))
        )
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy)
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1"))  // hit 1 (a miss counts as demand)
        await worker.cache.flushHits()
        let committed = try await retention(worker, "k")
        #expect(committed.pttl > 3_000 && committed.pttl <= 5_000)  // fresh + stale, not slid
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("x"))  // hit 2: below threshold
        await worker.cache.flushHits()
        let belowThreshold = try await retention(worker, "k")
        #expect(belowThreshold.pttl <= committed.pttl)
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("x"))  // hit 3: hot
        await worker.cache.flushHits()
        let hot = try await retention(worker, "k")
        #expect(hot.pttl > 119_000 && hot.pttl <= 120_000)
        #expect(hot.freshUntil == committed.freshUntil)  // freshness never slides
        // A hot answer is still refreshed on schedule: once the server's clock passes its fresh-until.
        try await waitUntilServerClockPasses(hot.freshUntil, worker.client, "the value is stale by the server's clock")
        let stale = try await worker.cache.value(for: "k", compute: upstream.compute("v2"))
        #expect(stale.source == .staleHit(.startedHere))
        await worker.cache.waitForBackgroundWork()
        let refreshed = try await worker.cache.value(for: "k", compute: upstream.compute("x"))
        #expect(text(refreshed.value) == "v2")
        #expect(upstream.count == 2)
        await worker.stop()
    }

    @Test("hot keys: hits are counted in batches; the window slides and decays, so a key that cools down stops sliding")
    func hotCounterDecays() async throws {
        // A 2 s window: the counter (kept for two windows) outlives the reads below on a loaded machine.
        let policy = testPolicy(hot: .init(threshold: 2, window: .seconds(2), ttl: .seconds(300)))
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy)
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("v"))
        await worker.cache.flushHits()
        let entry = try await worker.cache.entryKeys(for: "k")
        #expect(try await worker.client.send("HGET", RedisArgument(entry.hot), "c").int == 1)
        // More than two windows: the counter has expired, so the next hit starts from zero.
        try await eventually("the hit counter decayed away") {
            try await worker.client.send("EXISTS", RedisArgument(entry.hot)).int == 0
        }
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("x"))
        await worker.cache.flushHits()
        #expect(try await worker.client.send("HMGET", RedisArgument(entry.hot), "c", "p") == .array([.bulkString(ByteBuffer(string: "1")), .bulkString(ByteBuffer(string: "0"))]))
        let notHot = try await retention(worker, "k")
        #expect(notHot.pttl < 120_000)  // the committed 120 s retention (60+60), never slid to 300 s
        // Five hits in one batch: hot at once.
        for _ in 0..<5 { _ = try await worker.cache.value(for: "k", compute: upstream.compute("x")) }
        await worker.cache.flushHits()
        let hot = try await retention(worker, "k")
        #expect(hot.pttl > 299_000)
        await worker.stop()
    }

    @Test("forceRefresh recomputes a fresh value under the lock and stores it; concurrent forced callers share one computation")
    func forceRefresh() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let workers = try await Worker.fleet(2, url: url, namespace: namespace, policy: testPolicy())
        let upstream = Upstream()
        _ = try await workers[0].cache.value(for: "k", compute: upstream.compute("v1"))
        let forced = try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
            for worker in workers {
                for _ in 0..<5 {
                    group.addTask { try await worker.cache.value(for: "k", options: .init(forceRefresh: true), compute: upstream.compute("v2", latency: .milliseconds(200))) }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(upstream.count == 2)  // v1, then exactly one forced recomputation for all 10 callers
        #expect(forced.allSatisfy { text($0.value) == "v2" })
        #expect(Set(forced.map(\.source.label)) == ["computed", "joined_in_process", "received_from_other_worker"])
        #expect(forced.filter { $0.source == .computed }.count == 1)
        let after = try await workers[1].cache.value(for: "k", compute: upstream.compute("x"))
        #expect(after.source == .freshHit && text(after.value) == "v2")
        for worker in workers { await worker.stop() }
    }

    @Test("noStore serves a fresh value, else computes without locking or storing")
    func noStore() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        let miss = try await worker.cache.value(for: "k", options: .init(noStore: true), compute: upstream.compute("private"))
        #expect(miss.source == .computedNotStored && text(miss.value) == "private")
        let entry = try await worker.cache.entryKeys(for: "k")
        #expect(try await worker.client.send("EXISTS", RedisArgument(entry.value), RedisArgument(entry.lock)).int == 0)
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("shared"))
        let hit = try await worker.cache.value(for: "k", options: .init(noStore: true), compute: upstream.compute("x"))
        #expect(hit.source == .freshHit && text(hit.value) == "shared")
        #expect(upstream.count == 2)
        await worker.stop()
    }

    @Test("NOSCRIPT: after SCRIPT FLUSH mid-run, the next calls succeed")
    func survivesScriptFlush() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy())
            let upstream = Upstream()
            _ = try await worker.cache.value(for: "a", compute: upstream.compute("1"))
            try await worker.client.send("SCRIPT", "FLUSH")
            let hit = try await worker.cache.value(for: "a", compute: upstream.compute("x"))
            #expect(hit.source == .freshHit)
            let miss = try await worker.cache.value(for: "b", compute: upstream.compute("2"))
            #expect(miss.source == .computed)
            #expect(upstream.count == 2)
            await worker.stop()
        }
    }

    @Test("invalidate(key:) deletes one entry; invalidateAll() retires the namespace in every worker")
    func keyAndNamespaceInvalidation() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let workers = try await Worker.fleet(2, url: url, namespace: namespace, policy: testPolicy())
        let upstream = Upstream()
        _ = try await workers[0].cache.value(for: "a", compute: upstream.compute("a1"))
        _ = try await workers[0].cache.value(for: "b", compute: upstream.compute("b1"))
        #expect(try await workers[1].cache.invalidate(key: "a") == true)
        #expect(try await workers[1].cache.value(for: "a", compute: upstream.compute("a2")).source == .computed)
        #expect(try await workers[1].cache.value(for: "b", compute: upstream.compute("x")).source == .freshHit)
        let generation = try await workers[0].cache.invalidateAll()
        #expect(generation >= 1)
        // Worker 1 learns the new generation from the notice (or its 1 s refresh).
        _ = try await eventually(within: .seconds(3)) {
            guard await workers[1].cache.currentGeneration() == generation else { throw UpstreamDown() }
        }
        let afterAll = try await workers[1].cache.value(for: "b", compute: upstream.compute("b2"))
        #expect(afterAll.source == .computed)
        #expect(text(afterAll.value) == "b2")
        #expect(upstream.count == 4)
        for worker in workers { await worker.stop() }
    }

    @Test("invalidate(tag:) deletes exactly the entries committed with that tag")
    func tagInvalidation() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "p1-a", options: .init(tags: ["product:1"]), compute: upstream.compute("x"))
        _ = try await worker.cache.value(for: "p1-b", options: .init(tags: ["product:1", "lang:en"]), compute: upstream.compute("x"))
        _ = try await worker.cache.value(for: "p2", options: .init(tags: ["product:2"]), compute: upstream.compute("x"))
        #expect(try await worker.cache.invalidate(tag: "product:1") == 2)
        #expect(try await worker.cache.value(for: "p1-a", compute: upstream.compute("x")).source == .computed)
        #expect(try await worker.cache.value(for: "p1-b", compute: upstream.compute("x")).source == .computed)
        #expect(try await worker.cache.value(for: "p2", compute: upstream.compute("x")).source == .freshHit)
        #expect(try await worker.cache.invalidate(tag: "product:1") == 0)
        await worker.stop()
    }

    @Test("an oversized value is rejected before writing; followers get the error instead of hanging")
    func oversizedValue() async throws {
        var policy = testPolicy()
        policy.maxValueBytes = 1_024
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let leader = try await Worker.start(url, namespace: namespace, policy: policy)
        let follower = try await Worker.start(url, namespace: namespace, policy: policy)
        let big: @Sendable () async throws -> [UInt8] = { [UInt8](repeating: 7, count: 2_048) }
        let gate = Gate()
        let leading = Task { try await leader.cache.value(for: "k", compute: gate.compute(String(repeating: "x", count: 2_048))) }
        try await eventually("the leader computes") { gate.arrived == 1 }
        let following = Task { try await follower.cache.value(for: "k", compute: big) }
        try await eventually("the follower waits") { follower.cache.diagnostics.followerWaits == 1 }
        gate.open()
        do {
            _ = try await following.value
            Issue.record("follower got a value")
        } catch let error as CacheError where error.code == .computationFailedElsewhere {
            #expect(error.upstreamMessage?.contains("2048 bytes") == true)
        }
        do {
            _ = try await leading.value
            Issue.record("leader got a value")
        } catch let error as CacheError where error.code == .valueTooLarge {
            #expect(error.key == "k")
            #expect(error.message.contains("2048 bytes, over maxValueBytes (1024)"))
        }
        let entry = try await leader.cache.entryKeys(for: "k")
        #expect(try await leader.client.send("EXISTS", RedisArgument(entry.value)).int == 0)
        #expect(try await leader.client.send("EXISTS", RedisArgument(entry.lock)).int == 0)
        await leader.stop()
        await follower.stop()
    }

    @Test("a corrupt or foreign entry is reported and treated as a miss, never a crash")
    func corruptEntries() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        // A foreign string at the entry key (no valid header).
        let foreign = try await worker.cache.entryKeys(for: "string")
        try await worker.client.send("SET", RedisArgument(foreign.value), "not an entry", "PX", "60000")
        let first = try await worker.cache.value(for: "string", compute: upstream.compute("recomputed"))
        #expect(first.source == .computed && text(first.value) == "recomputed")
        // A hash written by something else (wrong type).
        let alien = try await worker.cache.entryKeys(for: "hash")
        try await worker.client.send("HSET", RedisArgument(alien.value), "val", "x", "fu", "99999999999999")
        let second = try await worker.cache.value(for: "hash", compute: upstream.compute("mine"))
        #expect(second.source == .computed && text(second.value) == "mine")
        #expect(worker.cache.diagnostics.corruptEntries == 2)
        #expect(try await worker.cache.value(for: "hash", compute: upstream.compute("x")).source == .freshHit)
        await worker.stop()
    }

    @Test("keys with braces, pipes and percent signs are escaped and round-trip")
    func unusualKeys() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        for key in ["{tag}", "a|b", "100%", "ünïcödé key with spaces"] {
            #expect(try await worker.cache.value(for: key, compute: upstream.compute(key)).source == .computed)
            #expect(text(try await worker.cache.value(for: key, compute: upstream.compute("x")).value) == key)
        }
        await worker.stop()
    }

    @Test("Redis down: fail-open computes uncached and says so; fail-closed throws a typed error")
    func redisUnavailable() async throws {
        let client = try makeClient("redis://127.0.0.1:1", backoff: .init(initial: .milliseconds(10), maximum: .milliseconds(20)))
        let upstream = Upstream()
        let open = try StampedeCache(redis: client, namespace: "down", policy: testPolicy(), logger: TestRedis.logger)
        let result = try await open.value(for: "k", compute: upstream.compute("direct"))
        #expect(result.source == .uncachedRedisUnavailable)
        #expect(text(result.value) == "direct")
        var closedPolicy = testPolicy()
        closedPolicy.redisUnavailable = .failClosed
        let closed = try StampedeCache(redis: client, namespace: "down", policy: closedPolicy, logger: TestRedis.logger)
        do {
            _ = try await closed.value(for: "k", compute: upstream.compute("never"))
            Issue.record("expected redisUnavailable")
        } catch let error as CacheError where error.code == .redisUnavailable {
            #expect(error.redisError?.code == .connection)
        }
        #expect(upstream.count == 1)
        await client.close()
    }

    @Test("a server restart mid-run (data and scripts gone) costs one recomputation, then hits again")
    func serverRestart() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy())
            let upstream = Upstream()
            _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1"))
            try await server.restart()
            _ = try await eventually { _ = try await worker.client.ping() }
            let after = try await worker.cache.value(for: "k", compute: upstream.compute("v2"))
            #expect(after.source == .computed)
            #expect(try await worker.cache.value(for: "k", compute: upstream.compute("x")).source == .freshHit)
            #expect(upstream.count == 2)
            await worker.stop()
        }
    }
}

@Suite("Redis out of memory")
struct OutOfMemoryTests {
    @Test("a Redis at maxmemory with noeviction refuses the lock: the request fails open, computes once, and returns the value uncached")
    func outOfMemoryFailsOpen() async throws {
        var options = RedisServerOptions()
        options.maxmemory = "1mb"
        options.maxmemoryPolicy = "noeviction"
        try await withPrivateRedis(options) { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy())
            // Fill Redis past its limit (writes are refused from then on).
            let filler = [UInt8](repeating: 120, count: 64 * 1_024)
            var refused: RedisError?
            for index in 0..<64 where refused == nil {
                do { try await worker.client.set("filler:\(index)", to: RedisArgument(bytes: filler)) } catch let error as RedisError { refused = error }
            }
            let oom = try #require(refused, "Redis never reached maxmemory")
            #expect(oom.message.hasPrefix("OOM "), "the server's own message: \(oom.message)")
            // The refusal above counted the refused SET's 64 KiB query buffer; once Redis frees it
            // (a loaded machine gives its cron time to), used memory can fall back under the limit
            // and writes succeed again. Put the limit at half of what the data uses, so every write
            // stays refused whatever Redis frees.
            let memory = try await worker.client.send("INFO", "memory").string ?? ""
            let used = try #require(
                memory.split(separator: "\r\n").first { $0.hasPrefix("used_memory:") }.flatMap { Int($0.dropFirst("used_memory:".count)) },
                "INFO memory has used_memory"
            )
            try await worker.client.send("CONFIG", "SET", "maxmemory", RedisArgument(used / 2))
            await #expect(throws: RedisError.self, "a write after lowering the limit is refused") {
                try await worker.client.set("filler:last", to: "x")
            }
            let upstream = Upstream()
            let result = try await worker.cache.value(for: "k", compute: upstream.compute("answer"))
            #expect(result.source == .uncachedRedisUnavailable)
            #expect(String(decoding: result.value, as: UTF8.self) == "answer")
            #expect(upstream.count == 1)
            await worker.stop()
        }
    }
}

@Suite("hit counting")
struct HitCountingTests {
    @Test("with hot keys off (hot.ttl 0) no hits are kept in memory, so nothing grows without a flusher")
    func noHitsWithoutHotKeys() async throws {
        try await withPrivateRedis { server in
            var policy = testPolicy()
            policy.hot.ttl = .zero
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: policy)
            for index in 0..<50 { _ = try await worker.cache.value(for: "k\(index)") { [1] } }
            #expect(worker.cache.hits.drain().isEmpty)
            await worker.stop()
        }
    }
}
