import Foundation
import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Testing

/// The near-cache against a real Redis: coherence by `CLIENT TRACKING`, every loss of coherence
/// dropping everything before the next near hit, and its bounds.
@Suite("near-cache: coherent by CLIENT TRACKING, bounded, dropped on every loss", .sharedRedis)
struct NearCacheTests {
    private static let near = NearCacheConfiguration(maxEntries: 1_000, maxBytes: 1 << 20)

    /// Reads `key` until the answer comes from the near-cache. A read fills it, unless an
    /// invalidation raced it: right after this worker computed the key, Redis's invalidation of
    /// that commit (the key was tracked since the miss read it) may arrive during the next read,
    /// which is then, rightly, not held. So: at most 5 reads.
    private func warm(_ worker: Worker, _ key: String, expecting value: String) async throws {
        for _ in 0..<5 {
            let read = try await worker.cache.string(for: key) { "computed-by-warm" }
            #expect(read.value == value)
            if read.source == .freshHitNear { return }
        }
        Issue.record("\(key) never came from memory in 5 reads: \(String(describing: worker.cache.nearCacheDiagnostics))")
    }

    @Test("another worker's commit, and a SET or DEL by anyone, drop the entry from every near-cache; the next read sees the new value")
    func invalidatedByWritesFromAnywhere() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let writer = try await Worker.start(url, namespace: namespace, policy: testPolicy())
        let readers = [
            try await Worker.start(url, namespace: namespace, policy: testPolicy(), nearCache: Self.near),
            try await Worker.start(url, namespace: namespace, policy: testPolicy(), nearCache: Self.near),
        ]
        _ = try await writer.cache.string(for: "k") { "v1" }
        for reader in readers { try await warm(reader, "k", expecting: "v1") }

        // 1. Another worker recomputes and commits v2.
        let v2 = try await writer.cache.string(for: "k", options: CacheRequestOptions(forceRefresh: true)) { "v2" }
        #expect(v2.source == .computed)
        for reader in readers {
            try await eventually("the commit's invalidation reached the reader") { (reader.cache.nearCacheDiagnostics?.entriesInvalidated ?? 0) >= 1 }
            let after = try await reader.cache.string(for: "k") { "never" }
            #expect(after.value == "v2")
            #expect(after.source == .freshHit, "the first read after an invalidation goes to Redis")
            #expect(try await reader.cache.string(for: "k") { "never" }.source == .freshHitNear)
        }

        // 2. Anyone DELetes the entry (redis-cli DEL): every reader drops it and computes.
        let entry = try await writer.cache.entryKeys(for: "k")
        _ = try await writer.client.send("DEL", RedisArgument(entry.value))
        for reader in readers {
            try await eventually("the DEL's invalidation reached the reader") { (reader.cache.nearCacheDiagnostics?.entriesInvalidated ?? 0) >= 2 }
        }
        let recomputed = try await readers[0].cache.string(for: "k") { "v3" }
        #expect(recomputed.value == "v3" && recomputed.source == .computed)

        // 3. Anyone SETs the value key: the old entry is dropped, the new bytes are read.
        try await warm(readers[1], "k", expecting: "v3")
        let blob = try #require(try await writer.client.send("GET", RedisArgument(entry.value)).buffer)
        let header = String(buffer: blob).prefix { $0 != "\n" }
        _ = try await writer.client.send("SET", RedisArgument(entry.value), RedisArgument(header + "\nv4"), "KEEPTTL")
        try await eventually("the SET's invalidation reached the reader") { (readers[1].cache.nearCacheDiagnostics?.entriesInvalidated ?? 0) >= 3 }
        #expect(try await readers[1].cache.string(for: "k") { "never" }.value == "v4")

        // Exactly one pair per reader was opened, and nothing was flushed wholesale.
        for reader in readers {
            let diagnostics = try #require(reader.cache.nearCacheDiagnostics)
            #expect(diagnostics.trackingConnectionsOpened == 1)
            #expect(diagnostics.flushes == 0)
        }
        for worker in readers + [writer] { await worker.stop() }
    }

    @Test("a held entry whose early refresh is due goes to Redis and is counted as a near miss, not a near hit")
    func earlyRefreshDueIsNotCountedAsANearHit() async throws {
        var policy = testPolicy()
        policy.earlyRefreshBeta = 1_000_000_000  // with any compute time, every read is past XFetch's draw
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy, nearCache: Self.near)
        // A compute of a few ms gives the entry a non-zero compute time, which XFetch needs.
        _ = try await worker.cache.string(for: "k") { try await Task.sleep(for: .milliseconds(5)); return "v" }
        var fromMemory = 0
        for _ in 0..<10 {
            let read = try await worker.cache.string(for: "k") { try await Task.sleep(for: .milliseconds(5)); return "v" }
            #expect(read.value == "v")
            if read.source == .freshHitNear { fromMemory += 1 }
        }
        let diagnostics = try #require(worker.cache.nearCacheDiagnostics)
        #expect(fromMemory == 0, "an early refresh that is due is decided by Redis")
        #expect(diagnostics.inserts >= 1, "the reads did fill the near-cache")
        #expect(diagnostics.hits == fromMemory)
        #expect(diagnostics.hits + diagnostics.misses == 11, "one lookup per read: the first (computed) and the ten")
        await worker.stop()
    }

    @Test("hits answered from memory count toward hot-key promotion, each exactly once")
    func nearHitsCountTowardHotKeys() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy(), nearCache: Self.near)
        _ = try await worker.cache.string(for: "k") { "v" }  // a miss counts as demand: 1
        var reads = 1
        var fromMemory = 0
        while fromMemory < 20, reads < 40 {
            let read = try await worker.cache.string(for: "k") { "never" }
            reads += 1
            if read.source == .freshHitNear { fromMemory += 1 }
        }
        #expect(fromMemory == 20)
        await worker.cache.flushHits()
        let entry = try await worker.cache.entryKeys(for: "k")
        #expect(try await worker.client.send("HGET", RedisArgument(entry.hot), "c").int == Int64(reads), "every read counted once: \(reads)")
        await worker.stop()
    }

    @Test("a write by this process drops its own near entry at once: it reads its own writes")
    func readsItsOwnWrites() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy(), nearCache: Self.near)
        _ = try await worker.cache.string(for: "k") { "v1" }
        try await warm(worker, "k", expecting: "v1")
        _ = try await worker.cache.string(for: "k", options: CacheRequestOptions(forceRefresh: true)) { "v2" }
        // No waiting for Redis's invalidation: the commit itself dropped the entry.
        #expect(try await worker.cache.string(for: "k") { "never" }.value == "v2")
        #expect(try await worker.cache.invalidate(key: "k"))
        let afterInvalidate = try await worker.cache.string(for: "k") { "v3" }
        #expect(afterInvalidate.value == "v3" && afterInvalidate.source == .computed)
        await worker.stop()
    }

    @Test("killing the invalidation listener (or the tracked reader) flushes the near-cache before any further near hit; it recovers with a new pair")
    func killedConnectionsFlush() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let worker = try await Worker.start(url, namespace: namespace, policy: testPolicy(), nearCache: Self.near)
        let writer = try await Worker.start(url, namespace: namespace, policy: testPolicy())
        _ = try await worker.cache.string(for: "k") { "v1" }
        try await warm(worker, "k", expecting: "v1")
        let admin = try makeClient(url)

        // The listener: killed, then a write it can no longer hear about.
        let listener = try #require(worker.cache.nearCacheListenerIDs.first)
        _ = try await admin.send("CLIENT", "KILL", "ID", RedisArgument(listener))
        try await eventually("the loss was noticed") { (worker.cache.nearCacheDiagnostics?.flushes ?? 0) >= 1 }
        #expect(worker.cache.nearCacheDiagnostics?.entries == 0)
        _ = try await writer.cache.string(for: "k", options: CacheRequestOptions(forceRefresh: true)) { "v2" }
        let afterListenerLoss = try await worker.cache.string(for: "k") { "never" }
        #expect(afterListenerLoss.value == "v2")
        #expect(afterListenerLoss.source == .freshHit)
        #expect(try await worker.cache.string(for: "k") { "never" }.source == .freshHitNear, "a new pair was opened and serves again")

        // The tracked reader (the client whose tracking redirects to the new listener).
        let newListener = try #require(worker.cache.nearCacheListenerIDs.first)
        #expect(newListener != listener)
        let clients = try await admin.send("CLIENT", "LIST").string ?? ""
        let readerLine = try #require(clients.split(separator: "\n").first { $0.contains(" redir=\(newListener) ") })
        let readerID = try #require(readerLine.split(separator: " ").first { $0.hasPrefix("id=") }.flatMap { Int64($0.dropFirst(3)) })
        _ = try await admin.send("CLIENT", "KILL", "ID", RedisArgument(readerID))
        try await eventually("the reader's loss was noticed") { (worker.cache.nearCacheDiagnostics?.flushes ?? 0) >= 2 }
        _ = try await writer.cache.string(for: "k", options: CacheRequestOptions(forceRefresh: true)) { "v3" }
        #expect(try await worker.cache.string(for: "k") { "never" }.value == "v3")
        #expect(worker.cache.nearCacheDiagnostics?.trackingConnectionsOpened == 3)
        await admin.close()
        await writer.stop()
        await worker.stop()
    }

    @Test("FLUSHALL drops everything (Redis sends a null invalidation)")
    func flushAllDropsEverything() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy(), nearCache: Self.near)
            for key in ["a", "b", "c"] {
                _ = try await worker.cache.string(for: key) { key }
                try await warm(worker, key, expecting: key)
            }
            #expect(worker.cache.nearCacheDiagnostics?.entries == 3)
            _ = try await worker.client.send("FLUSHALL")
            try await eventually("the flush was received") { (worker.cache.nearCacheDiagnostics?.flushes ?? 0) >= 1 }
            #expect(worker.cache.nearCacheDiagnostics?.entries == 0)
            #expect(try await worker.cache.string(for: "a") { "recomputed" }.source == .computed)
            await worker.stop()
        }
    }

    @Test("a Redis restart flushes the near-cache; nothing read before it is answered from memory after it")
    func restartFlushes() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy(), nearCache: Self.near)
            _ = try await worker.cache.string(for: "k") { "before" }
            try await warm(worker, "k", expecting: "before")
            try await server.restart()
            try await eventually("the restart was noticed") { (worker.cache.nearCacheDiagnostics?.flushes ?? 0) >= 1 }
            // The restarted server has no data (no persistence): the value is computed again.
            let after = try await worker.cache.string(for: "k") { "after" }
            #expect(after.value == "after")
            #expect(after.source == .computed)
            await worker.stop()
        }
    }

    @Test("a near entry is answered only while it is fresh by the server's clock; then the request goes to Redis (stale-while-revalidate as usual)")
    func freshnessFollowsTheServerClock() async throws {
        let policy = testPolicy(freshFor: .seconds(1), staleFor: .seconds(60))
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy, nearCache: Self.near)
        let committed = try await worker.cache.string(for: "k") { "v1" }
        let freshUntil = try #require(committed.freshUntilMillis)
        // The reads before expiry compute "v2" too if they ever run: on a machine slower than
        // `freshFor` one of them may already find the entry stale and start the refresh.
        let early = Upstream()
        let read = try await worker.cache.value(for: "k", compute: early.compute("v2"))
        if read.source == .freshHit {
            // The server's clock before the near hit: the true remaining freshness at the hit is at
            // most fresh-until minus it, and the near-cache's (a lower bound) no more than that.
            let serverBefore = try await serverMillis(worker.client)
            let near = try await worker.cache.value(for: "k", compute: early.compute("v2"))
            // When the read lands in time, the answer comes from memory, with an honest remaining freshness.
            if near.source == .freshHitNear {
                let remaining = try #require(near.remainingFreshness)
                #expect(remaining <= .milliseconds(max(0, freshUntil - serverBefore) + 1), "remaining freshness never exceeds the server clock's")
            }
        }
        try await waitUntilServerClockPasses(freshUntil, worker.client, "the value is stale by the server's clock")
        let stale = try await worker.cache.string(for: "k") { "v2" }
        #expect(!(stale.source == .freshHitNear && stale.value == "v1"), "a stale entry is never answered from memory")
        if early.count == 0 {
            #expect(stale.source == .staleHit(.startedHere), "a stale entry goes to Redis, which serves it and starts the refresh")
            #expect(stale.value == "v1")
        }
        await worker.cache.waitForBackgroundWork()
        #expect(try await worker.cache.string(for: "k") { "never" }.value == "v2")
        await worker.stop()
    }

    @Test("bytes and entries stay within the bounds; TinyLFU keeps a hot key against a stream of one-off keys")
    func boundsAndAdmission() async throws {
        let configuration = NearCacheConfiguration(maxEntries: 4, maxBytes: 8_192, maxEntryBytes: 2_048)
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy(), nearCache: configuration)
        let payload = String(repeating: "x", count: 1_500)
        // A hot key, asked for often.
        _ = try await worker.cache.string(for: "hot") { payload }
        for _ in 0..<10 { _ = try await worker.cache.string(for: "hot") { "never" } }
        // Forty one-off keys, each computed and read twice.
        for index in 0..<40 {
            _ = try await worker.cache.string(for: "once-\(index)") { payload }
            _ = try await worker.cache.string(for: "once-\(index)") { "never" }
            let diagnostics = try #require(worker.cache.nearCacheDiagnostics)
            #expect(diagnostics.bytes <= 8_192 && diagnostics.entries <= 4, "within bounds: \(diagnostics.bytes) B, \(diagnostics.entries) entries")
        }
        #expect(try await worker.cache.string(for: "hot") { "never" }.source == .freshHitNear, "the hot key was never displaced")
        let diagnostics = try #require(worker.cache.nearCacheDiagnostics)
        #expect(diagnostics.notAdmitted > 0)
        // Larger than maxEntryBytes: never held.
        let large = String(repeating: "y", count: 3_000)
        _ = try await worker.cache.string(for: "large") { large }
        for _ in 0..<3 { #expect(try await worker.cache.string(for: "large") { "never" }.source == .freshHit) }
        await worker.stop()
    }

    @Test("a read that raced an invalidation or a flush is not held (epochs taken before the read)")
    func racedReadsAreNotHeld() throws {
        var state = NearCacheState(configuration: NearCacheConfiguration(maxEntries: 10, maxBytes: 1 << 20, admission: .always))
        let keys = EntryKeys(id: "ns:0:k")
        let stored = try #require(StoredEntry(blob: ByteBuffer(string: "sc2 2000 3000 1000 5 1\nvalue"), now: 1_500))
        let entry = NearCacheEntry(stored: stored, sentAt: .now, generation: 0, keys: keys, userKey: "k")

        let beforeInvalidation = state.ticket(for: keys.value)
        #expect(state.invalidate(valueKeys: [keys.value]) == 0)
        #expect(state.insert("k", entry, ticket: beforeInvalidation) == .raced)

        let beforeFlush = state.ticket(for: keys.value)
        #expect(state.flush() == 0)
        #expect(state.insert("k", entry, ticket: beforeFlush) == .raced)

        let clean = state.ticket(for: keys.value)
        #expect(state.insert("k", entry, ticket: clean) == .inserted(evicted: 0))
        #expect(state.lookup("k", generation: 0, now: .now)?.hit.value == ByteBuffer(string: "value"))
        #expect(state.lookup("k", generation: 1, now: .now) == nil, "another generation's entry is not served (and is dropped)")
        #expect(state.count == 0)
        // Fresh by the upper bound of the server clock only: fu - now - 1 ms after the read was sent.
        let sent = NearInstant(nanoseconds: 5_000_000_000)
        let timed = NearCacheEntry(stored: stored, sentAt: sent, generation: 0, keys: keys, userKey: "k")
        #expect(timed.freshDeadline == sent.adding(milliseconds: 499))
        #expect(state.insert("k", timed, ticket: state.ticket(for: keys.value)) == .inserted(evicted: 0))
        #expect(state.lookup("k", generation: 0, now: NearInstant(nanoseconds: 5_498_999_999)) != nil)
        #expect(state.lookup("k", generation: 0, now: NearInstant(nanoseconds: 5_499_000_000)) == nil)
    }

    @Test("a near hit's server-clock bound rounds up to the millisecond: TIME 1500 sent at t, read 2.000001 ms later, is at most 1504")
    func nearHitServerClockBound() throws {
        let stored = try #require(StoredEntry(blob: ByteBuffer(string: "sc2 2000 3000 1000 5 1\nvalue"), now: 1_500))
        let sent = NearInstant(nanoseconds: 1_000)
        let hit = NearCacheHit(stored: stored, sentAt: sent)
        #expect(hit.serverTimeUpperBound(at: sent) == 1_501)
        #expect(hit.serverTimeUpperBound(at: NearInstant(nanoseconds: 1_000 + 2_000_000)) == 1_503)
        #expect(hit.serverTimeUpperBound(at: NearInstant(nanoseconds: 1_000 + 2_000_001)) == 1_504)
        // An instant before the send (impossible on one clock) never lowers the bound below TIME + 1 ms.
        #expect(hit.serverTimeUpperBound(at: NearInstant(nanoseconds: 0)) == 1_501)
        // Entries whose freshness ends within TIME's own millisecond are never served.
        let ending = try #require(StoredEntry(blob: ByteBuffer(string: "sc2 1501 3000 1000 5 1\nvalue"), now: 1_500))
        #expect(NearCacheHit(stored: ending, sentAt: sent).freshDeadline == sent)
        // Far-away instants saturate instead of overflowing.
        #expect(NearInstant(nanoseconds: .max - 5).adding(milliseconds: 1) == NearInstant(nanoseconds: .max))
        #expect(NearInstant(nanoseconds: .min + 5).nanoseconds(since: NearInstant(nanoseconds: 10)) == .min)
    }

    @Test("XFetch draws no random number far from an entry's end: 0 draws for 10,000 hits 60 s before it, a draw at every hit within the window")
    func xfetchDrawsOnlyNearTheEnd() {
        var draws = 0
        // Computed in 100 ms, beta 1: no draw can make a refresh due more than 3.7 s before the end.
        for _ in 0..<10_000 {
            let due = StampedeCache.earlyRefreshDue(computeMillis: 100, freshUntil: 100_000, serverNow: 40_000, beta: 1) { draws += 1; return 1e-300 }
            #expect(!due)
        }
        #expect(draws == 0)
        // Within the window the draw decides: the smallest draw (−ln ≈ 36.04) refreshes 3.6 s early, 1 never does.
        #expect(StampedeCache.earlyRefreshDue(computeMillis: 100, freshUntil: 100_000, serverNow: 96_500, beta: 1) { draws += 1; return Double.ulpOfOne })
        #expect(!StampedeCache.earlyRefreshDue(computeMillis: 100, freshUntil: 100_000, serverNow: 96_500, beta: 1) { draws += 1; return 1 })
        #expect(draws == 2)
        // At or past the end a draw of 1 is due too; beta 0 or an instant computation never is.
        #expect(StampedeCache.earlyRefreshDue(computeMillis: 100, freshUntil: 100_000, serverNow: 100_000, beta: 1) { 1 })
        #expect(!StampedeCache.earlyRefreshDue(computeMillis: 100, freshUntil: 100_000, serverNow: 100_000, beta: 0) { 1 })
        #expect(!StampedeCache.earlyRefreshDue(computeMillis: 0, freshUntil: 100_000, serverNow: 100_000, beta: 1) { 1 })
    }

    @Test("the README's near-cache example compiles, runs and matches the README")
    func readmeExample() async throws {
        let redis = try makeClient(try TestRedis.sharedURL)
        let namespace = uniqueNamespace()
        // README example: near-cache
        let cache = try StampedeCache(
            redis: redis, namespace: namespace, policy: CachePolicy(freshFor: .seconds(300), staleFor: .seconds(3600)),
            nearCache: NearCacheConfiguration(maxEntries: 50_000, maxBytes: 256 << 20))
        var sources: [CacheSource] = []
        for _ in 0..<4 {
            let answer = try await cache.string(for: "faq:shipping") { "Ships in 2 days." }
            sources.append(answer.source)   // computed, fresh_hit (read from Redis, now held), fresh_hit_near, ...
        }
        print(sources, cache.nearCacheDiagnostics?.hits ?? 0)
        // end of README example
        // The first read after this process's own commit may race Redis's invalidation of that
        // commit (it is then, rightly, not held), so one read may go to Redis once more.
        #expect(sources.first == .computed && sources.dropFirst().contains(.freshHitNear), "\(sources)")
        let (readme, source) = try readmeExampleMatches("near-cache")
        #expect(readme != nil && readme == source)
        await cache.close()
        await redis.close()
    }

    @Test("bad near-cache settings are refused with the setting named")
    func badConfiguration() throws {
        let client = try makeClient("redis://127.0.0.1:1")
        for (configuration, setting) in [
            (NearCacheConfiguration(maxEntries: 0), "nearCache.maxEntries"),
            (NearCacheConfiguration(maxBytes: 100), "nearCache.maxBytes"),
            (NearCacheConfiguration(maxBytes: 4_096, maxEntryBytes: 5_000), "nearCache.maxEntryBytes"),
        ] {
            #expect { try StampedeCache(redis: client, namespace: "n", nearCache: configuration) } throws: { error in
                (error as? CacheConfigurationError)?.setting == setting
            }
        }
    }
}
