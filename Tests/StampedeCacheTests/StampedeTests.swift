import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Synchronization
import Testing

@Suite("StampedeCache: one computation per key across a fleet", .sharedRedis)
struct StampedeTests {
    @Test("herd: 4 workers x 50 concurrent callers on one cold key -> exactly 1 computation, 1 value for all")
    func herdComputesOnce() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let workers = try await Worker.fleet(4, url: url, namespace: namespace, policy: testPolicy())
        let upstream = Upstream()
        let results = try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
            for worker in workers {
                for caller in 0..<50 {
                    group.addTask {
                        try await worker.cache.value(for: "cold", compute: upstream.compute("answer-\(caller)", latency: .milliseconds(500)))
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(upstream.count == 1)
        #expect(results.count == 200)
        #expect(Set(results.map { text($0.value) }).count == 1)
        let sources = Dictionary(grouping: results, by: { $0.source.label }).mapValues(\.count)
        #expect(sources["computed", default: 0] == 1)  // the leader
        #expect(sources["joined_in_process", default: 0] == 49)  // the callers that joined it in its process
        #expect(sources["received_from_other_worker", default: 0] == 150)
        let diagnostics = workers.map(\.cache.diagnostics)
        #expect(diagnostics.map(\.computations).reduce(0, +) == 1)
        #expect(diagnostics.map(\.coalesced).reduce(0, +) == 4 * 49)
        for worker in workers { await worker.stop() }
    }

    @Test("a fresh hit is one round trip, no script: a GET alone while the server clock is sampled, TIME + GET pipelined otherwise; concurrent callers in one process share it")
    func freshHitIsOneRoundTrip() async throws {
        try await withPrivateRedis { server in
            var policy = testPolicy()
            policy.hot.ttl = .zero  // no hot-key flushes, so every command counted below is the hit's own
            // No background loop: a generation re-read (a GET, at most once a second) then happens
            // inside the call that needs it, and is counted by the diagnostics.
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: policy, backgroundLoop: false)
            // The sample of the server's clock lasts the whole test (default: 1 s), and any TIME's
            // round trip is short enough to be a sample (default: 10 ms, which a loaded machine
            // can exceed for many reads in a row), so the counts of TIME below are exact anywhere.
            worker.cache.serverClock.setLifetime(.seconds(3_600))
            worker.cache.serverClock.setMaximumUncertainty(.seconds(3_600))
            let upstream = Upstream()
            let first = try await worker.cache.value(for: "k", compute: upstream.compute("v"))
            #expect(first.source == .computed)
            // The first lookup had no sample: its read carried TIME, which is now the sample.
            #expect(worker.cache.serverClock.upperBound(at: .now) != nil)
            let generationReads = worker.cache.diagnostics.generationReads
            let before = (try await commandCalls(worker.client, "get"), try await commandCalls(worker.client, "time"), try await commandCalls(worker.client, "evalsha"))
            let hit = try await worker.cache.value(for: "k", compute: upstream.compute("other"))
            #expect(hit.source == .freshHit)
            #expect(text(hit.value) == "v")
            let after = (try await commandCalls(worker.client, "get"), try await commandCalls(worker.client, "time"), try await commandCalls(worker.client, "evalsha"))
            #expect(worker.cache.diagnostics.redisRetries == 0)
            #expect(after.0 == before.0 + 1 + (worker.cache.diagnostics.generationReads - generationReads))
            #expect(after.1 == before.1, "the first call's TIME bounds the server clock: the hit skips it")
            #expect(after.2 == before.2)
            // Without a sample (as after a failover): TIME + GET, which samples the clock again.
            worker.cache.serverClock.invalidate()
            let timedBefore = try await commandCalls(worker.client, "time")
            #expect(try await worker.cache.value(for: "k", compute: upstream.compute("other")).source == .freshHit)
            #expect(try await commandCalls(worker.client, "time") == timedBefore + 1)
            #expect(worker.cache.serverClock.upperBound(at: .now) != nil)
            #expect(try await worker.cache.value(for: "k", compute: upstream.compute("other")).source == .freshHit)
            #expect(try await commandCalls(worker.client, "time") == timedBefore + 1)

            // Concurrent callers in one process share their Redis reads: up to the pool size go
            // alone, the rest queue and leave in batches that read the key once each, so far fewer
            // GETs than callers (and no MGET: a batch of one distinct key is a GET).
            let beforeBurst = try await commandCalls(worker.client, "get")
            let mgetsBefore = try await commandCalls(worker.client, "mget")
            let batchesBefore = worker.cache.reads.batchCounts
            let coalescedBefore = worker.cache.diagnostics.coalesced
            let generationReadsBefore = worker.cache.diagnostics.generationReads
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        let result = try await worker.cache.value(for: "k", compute: upstream.compute("other"))
                        #expect(text(result.value) == "v")
                    }
                }
                try await group.waitForAll()
            }
            let burstReads = try await commandCalls(worker.client, "get") - beforeBurst - (worker.cache.diagnostics.generationReads - generationReadsBefore)
            let batched = worker.cache.reads.batchCounts.reads - batchesBefore.reads
            let batches = worker.cache.reads.batchCounts.batches - batchesBefore.batches
            #expect(burstReads >= 1 && burstReads < 100)
            #expect(burstReads == (100 - batched) + batches, "\(100 - batched) alone + \(batches) batches of \(batched) callers")
            #expect(try await commandCalls(worker.client, "mget") == mgetsBefore)
            #expect(worker.cache.diagnostics.coalesced == coalescedBefore, "a fresh hit takes no flight")
            #expect(upstream.count == 1)
            await worker.stop()
        }
    }

    @Test("50 concurrent callers on one stale key in one process: one of them started the refresh, the callers that joined it say another call refreshes")
    func joinedCallersDoNotClaimTheRefresh() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let upstream = Upstream()
        var shortLived = CacheRequestOptions()
        shortLived.freshFor = .milliseconds(1)
        let first = try await worker.cache.value(for: "k", options: shortLived, compute: upstream.compute("v1"))
        try await waitUntilServerClockPasses(try #require(first.freshUntilMillis), worker.client, "the value is stale by the server's clock")
        let sources = try await withThrowingTaskGroup(of: CacheSource.self) { group in
            for _ in 0..<50 { group.addTask { try await worker.cache.value(for: "k", compute: upstream.compute("v2", latency: .milliseconds(200))).source } }
            return try await group.reduce(into: [CacheSource]()) { $0.append($1) }
        }
        await worker.cache.waitForBackgroundWork()
        let started = sources.filter { $0 == .staleHit(.startedHere) }.count
        #expect(started == 1)
        #expect(started == worker.cache.diagnostics.refreshesStarted)
        #expect(sources.filter { $0 == .staleHit(.runningElsewhere) }.count == 49)
        #expect(upstream.count == 2)  // v1, and the one refresh
        await worker.stop()
    }

    @Test("followers in other workers wake on the commit notice, not on the re-check timer")
    func followersWakeOnNotice() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let policy = testPolicy(recheck: .seconds(10))  // a poll would take 10 s
        let leader = try await Worker.start(url, namespace: namespace, policy: policy)
        let followers = try await Worker.fleet(3, url: url, namespace: namespace, policy: policy)
        let upstream = Upstream()
        let gate = Gate()
        let leading = Task { try await leader.cache.value(for: "slow", compute: gate.compute("done")) }
        try await eventually("the leader computes") { gate.arrived == 1 }
        let following = Task {
            try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
                for follower in followers {
                    group.addTask { try await follower.cache.value(for: "slow", compute: upstream.compute("never")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        try await eventually("3 followers wait") { followers.map(\.cache.diagnostics.followerWaits).reduce(0, +) == 3 }
        gate.open()
        let results = try await following.value
        _ = try await leading.value
        #expect(gate.arrived == 1)
        #expect(upstream.count == 0)
        #expect(results.allSatisfy { $0.source == .receivedFromOtherWorker && text($0.value) == "done" })
        #expect(followers.map(\.cache.diagnostics.wakeupsByNotice).reduce(0, +) == 3)
        #expect(followers.map(\.cache.diagnostics.wakeupsByRecheck).reduce(0, +) == 0)
        await leader.stop()
        for follower in followers { await follower.stop() }
    }

    @Test("leader crash: a leader that never commits -> a follower takes over after lockTTL; 2 computations in total")
    func followerTakesOverFromCrashedLeader() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let policy = testPolicy(computeTimeout: .milliseconds(500), lockTTL: .milliseconds(1_500), recheck: .seconds(10))
        let crashing = try await Worker.start(url, namespace: namespace, policy: policy)
        let survivor = try await Worker.start(url, namespace: namespace, policy: policy)
        let upstream = Upstream()
        // The leader takes the lock and its computation hangs; then its Redis connection is gone
        // (the process "died"), so it can neither commit nor release.
        let hung = Task { try await crashing.cache.value(for: "k", compute: upstream.compute("never", latency: .seconds(60))) }
        try await eventually("the leader computes") { upstream.count == 1 }
        await crashing.client.close()
        let result = try await survivor.cache.value(for: "k", compute: upstream.compute("recovered"))
        #expect(text(result.value) == "recovered")
        #expect(result.source == .computed)
        #expect(upstream.count == 2)
        // It waited as a follower, woke when the dead leader's lock expired (no notice could come), and took over.
        #expect(survivor.cache.diagnostics.followerWaits >= 1)
        #expect(survivor.cache.diagnostics.wakeupsByNotice == 0)
        #expect(survivor.cache.diagnostics.lockTakeovers == 1)
        _ = try? await hung.value
        await survivor.stop()
        await crashing.stop()
    }

    @Test("zombie: a leader frozen past its lockTTL commits late -> rejected, the newer value stays")
    func zombieCommitIsRejected() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let policy = testPolicy(computeTimeout: .milliseconds(200), lockTTL: .milliseconds(1_200))
        let zombie = try await Worker.start(url, namespace: namespace, policy: policy)
        let live = try await Worker.start(url, namespace: namespace, policy: policy)
        let entry = try await zombie.cache.entryKeys(for: "k")
        guard case .leader(let oldToken, _) = try await zombie.client.execute(GetOrLock(entry, policy: policy)) else {
            Issue.record("expected to lead")
            return
        }
        try await Task.sleep(for: .milliseconds(1_300))  // frozen: the lock expires
        let upstream = Upstream()
        let fresh = try await live.cache.value(for: "k", compute: upstream.compute("newer"))
        #expect(fresh.source == .computed)
        let late = try await zombie.client.execute(Commit(
            entry, token: oldToken, value: ByteBuffer(string: "zombie"), policy: policy, freshFor: .seconds(60),
            computeTime: .seconds(2), channel: zombie.cache.keySpace.channel
        ))
        guard case .rejected(let reason, let currentFence) = late else {
            Issue.record("zombie commit accepted: \(late)")
            return
        }
        #expect(reason == "stale_token")
        #expect(currentFence > oldToken)
        let after = try await zombie.cache.value(for: "k", compute: upstream.compute("unused"))
        #expect(text(after.value) == "newer")
        #expect(after.source == .freshHit)
        await zombie.stop()
        await live.stop()
    }

    @Test("stale-while-revalidate: 200 callers after freshness ends get the stale value at once; exactly 1 refresh")
    func staleWhileRevalidate() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let policy = testPolicy(freshFor: .milliseconds(300), staleFor: .seconds(60))
        let workers = try await Worker.fleet(2, url: url, namespace: namespace, policy: policy)
        let upstream = Upstream()
        _ = try await workers[0].cache.value(for: "k", compute: upstream.compute("v1"))
        try await Task.sleep(for: .milliseconds(400))  // past freshFor: stale now
        // The refresh is held at a gate until every caller has been answered: nobody waits for it.
        // It stores v2 fresh for a minute (the callers' freshFor), so the read that checks it below
        // finds it fresh however loaded the machine is.
        let gate = Gate()
        let refreshedFreshFor = CacheRequestOptions(freshFor: .seconds(60))
        let asking = Task {
            try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
                for worker in workers {
                    for _ in 0..<100 {
                        group.addTask { try await worker.cache.value(for: "k", options: refreshedFreshFor, compute: gate.compute("v2")) }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        let answered = Atomic<Bool>(false)
        let watcher = Task { _ = try? await asking.value; answered.store(true, ordering: .relaxed) }
        try await eventually("all 200 callers answered while the refresh is still held") { answered.load(ordering: .relaxed) }
        gate.open()
        await watcher.value
        let results = try await asking.value
        #expect(results.count == 200)
        #expect(results.allSatisfy { text($0.value) == "v1" })
        let sources = Dictionary(grouping: results, by: { $0.source.label }).mapValues(\.count)
        #expect(sources.keys.allSatisfy { $0.hasPrefix("stale_hit") })
        for worker in workers { await worker.cache.waitForBackgroundWork() }  // the background refresh
        #expect(upstream.count == 1)  // v1
        #expect(gate.arrived == 1)  // then exactly one refresh
        #expect(workers.map(\.cache.diagnostics.refreshesStarted).reduce(0, +) == 1)
        let refreshed = try await workers[1].cache.value(for: "k", compute: upstream.compute("unused"))
        #expect(text(refreshed.value) == "v2")
        #expect(refreshed.source == .freshHit)
        for worker in workers { await worker.stop() }
    }

    @Test("fail-safe: the computation throws with a stale value present -> the stale value is served, marked")
    func failSafeServesStale() async throws {
        let url = try TestRedis.sharedURL
        let worker = try await Worker.start(url, namespace: uniqueNamespace(), policy: testPolicy(freshFor: .milliseconds(100), failSafeThrottle: .seconds(5)))
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("old"))
        try await Task.sleep(for: .milliseconds(150))
        // This caller wants fresh data (maxStale 0): it refreshes first and falls back on failure.
        let result = try await worker.cache.value(for: "k", options: .init(maxStale: .zero), compute: upstream.failing())
        #expect(text(result.value) == "old")
        guard case .staleAfterFailure(let reason) = result.source else {
            Issue.record("expected staleAfterFailure, got \(result.source)")
            return
        }
        #expect(reason.contains("UpstreamDown"))
        #expect(upstream.count == 2)
        // The fail-safe throttle holds the lease: nobody retries the failing upstream for 5 s.
        let again = try await worker.cache.value(for: "k", options: .init(maxStale: .zero), compute: upstream.failing())
        #expect(text(again.value) == "old")
        #expect(upstream.count == 2)
        await worker.stop()
    }

    @Test("stale-if-error bounds the fail-safe: a value staler than the bound is not served when the refresh fails; within it, it is")
    func staleIfErrorBoundsTheFailSafe() async throws {
        let url = try TestRedis.sharedURL
        let worker = try await Worker.start(url, namespace: uniqueNamespace(), policy: testPolicy(freshFor: .milliseconds(100)))
        let upstream = Upstream()
        let first = try await worker.cache.value(for: "k", compute: upstream.compute("old"))
        // Stored now, fresh for exactly the policy's 100 ms (no jitter), by the server clock.
        #expect(first.remainingFreshness == .milliseconds(100))
        let freshUntil = try #require(first.freshUntilMillis)
        try await waitUntilServerClockPasses(freshUntil + 300, worker.client, "the value is 300 ms stale")
        // Bound 100 ms < staleness: the failure reaches the caller.
        await #expect(throws: UpstreamDown.self) {
            _ = try await worker.cache.value(for: "k", options: .init(maxStale: .zero, staleIfError: .milliseconds(100)), compute: upstream.failing())
        }
        // Bound 0: never stale on failure.
        await #expect(throws: UpstreamDown.self) {
            _ = try await worker.cache.value(for: "k", options: .init(maxStale: .zero, staleIfError: .zero), compute: upstream.failing())
        }
        // Bound 60 s: the stale value is the fail-safe, and says it is no longer fresh.
        let served = try await worker.cache.value(for: "k", options: .init(maxStale: .zero, staleIfError: .seconds(60)), compute: upstream.failing())
        #expect(text(served.value) == "old")
        guard case .staleAfterFailure = served.source else {
            Issue.record("expected staleAfterFailure, got \(served.source)")
            return
        }
        #expect(served.remainingFreshness == .zero)
        #expect(upstream.count == 4)
        // A negative bound is refused before anything is asked.
        await #expect(throws: CacheError.self) {
            _ = try await worker.cache.value(for: "k", options: .init(staleIfError: .milliseconds(-1)), compute: upstream.failing())
        }
        #expect(upstream.count == 4)
        await worker.stop()
    }

    @Test("followerRetries 0, no stale value: the error reaches the leader and every follower, with 1 computation")
    func failureReachesFollowers() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let workers = try await Worker.fleet(3, url: url, namespace: namespace, policy: testPolicy(followerRetries: 0))
        let gate = Gate()
        @Sendable func ask(_ index: Int) async -> (Int, Result<CacheResult<[UInt8]>, any Error>) {
            do { return (index, .success(try await workers[index].cache.value(for: "k", compute: gate.failing()))) }
            catch { return (index, .failure(error)) }
        }
        // Worker 0 leads (its computation is held at the gate); the other two workers' callers
        // wait for it; then it fails.
        let leading = Task { await withTaskGroup(of: (Int, Result<CacheResult<[UInt8]>, any Error>).self) { group in
            for _ in 0..<10 { group.addTask { await ask(0) } }
            return await group.reduce(into: []) { $0.append($1) }
        } }
        try await eventually("worker 0 computes") { gate.arrived == 1 }
        let following = Task { await withTaskGroup(of: (Int, Result<CacheResult<[UInt8]>, any Error>).self) { group in
            for index in 1...2 { for _ in 0..<10 { group.addTask { await ask(index) } } }
            return await group.reduce(into: []) { $0.append($1) }
        } }
        try await eventually("workers 1 and 2 wait") { workers[1].cache.diagnostics.followerWaits + workers[2].cache.diagnostics.followerWaits == 2 }
        gate.open()
        let outcomes = await leading.value + following.value
        #expect(gate.arrived == 1)
        #expect(outcomes.count == 30)
        for (index, outcome) in outcomes {
            guard case .failure(let error) = outcome else {
                Issue.record("worker \(index) got a value")
                continue
            }
            if index == 0 {
                #expect(error is UpstreamDown)  // the leader's process gets the upstream's own error
            } else if let error = error as? CacheError, error.code == .computationFailedElsewhere {
                #expect(error.upstreamMessage?.contains("UpstreamDown") == true)
            } else {
                Issue.record("follower got \(error)")
            }
        }
        for worker in workers { await worker.stop() }
    }

    @Test("followerRetries 1: after the leader's failure one follower computes again; every follower gets its value, with 2 computations")
    func followersRetryOnce() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        var policy = testPolicy()
        policy.followerRetries = 1
        let leader = try await Worker.start(url, namespace: namespace, policy: policy)
        let followers = try await Worker.fleet(2, url: url, namespace: namespace, policy: policy)
        let failing = Gate()
        let succeeding = Upstream()
        let leading = Task { try await leader.cache.value(for: "k", compute: failing.failing()) }
        try await eventually("the leader computes") { failing.arrived == 1 }
        let following = Task {
            try await withThrowingTaskGroup(of: CacheResult<[UInt8]>.self) { group in
                for follower in followers {
                    group.addTask { try await follower.cache.value(for: "k", compute: succeeding.compute("second try")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        try await eventually("both followers wait") { followers.map(\.cache.diagnostics.followerWaits).reduce(0, +) == 2 }
        failing.open()
        let results = try await following.value
        await #expect(throws: UpstreamDown.self) { try await leading.value }
        #expect(failing.arrived == 1)
        #expect(succeeding.count == 1, "one retry round, one computation fleet-wide")
        #expect(results.map { String(decoding: $0.value, as: UTF8.self) } == ["second try", "second try"])
        #expect(followers.map(\.cache.diagnostics.followerRetries).reduce(0, +) == 2)
        await leader.stop()
        for follower in followers { await follower.stop() }
    }

    @Test("a computation past computeTimeout is abandoned, its lock released, and the caller told")
    func computeTimeout() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy(computeTimeout: .milliseconds(200), lockTTL: .milliseconds(1_500)))
        let upstream = Upstream()
        let started = ContinuousClock.now
        do {
            _ = try await worker.cache.value(for: "k", compute: upstream.compute("late", latency: .seconds(30)))
            Issue.record("expected a timeout")
        } catch let error as CacheError where error.code == .computationTimedOut {
            #expect(error.key == "k")
            #expect(error.message.contains("computeTimeout (0.2 seconds)"))
        }
        #expect(ContinuousClock.now - started < .seconds(10))  // abandoned, not waited out (30 s)
        // The lock was released: the next caller computes at once.
        let next = try await worker.cache.value(for: "k", compute: upstream.compute("ok"))
        #expect(next.source == .computed)
        await worker.stop()
    }

    @Test("early refresh (XFetch): with a large beta, a fresh value is refreshed before it expires")
    func earlyRefresh() async throws {
        var policy = testPolicy(freshFor: .seconds(2))
        // XFetch fires when compute_ms * beta * -ln(rand) >= time left: with 20 ms x 1e6 it fails to
        // fire only if rand > 0.9999, so three tries make a miss a 1e-12 event.
        policy.earlyRefreshBeta = 1_000_000
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: policy)
        let upstream = Upstream()
        _ = try await worker.cache.value(for: "k", compute: upstream.compute("v1", latency: .milliseconds(20)))
        var second = try await worker.cache.value(for: "k", compute: upstream.compute("v2"))
        for _ in 0..<2 where second.source != .freshHitEarlyRefresh {
            second = try await worker.cache.value(for: "k", compute: upstream.compute("v2"))
        }
        #expect(second.source == .freshHitEarlyRefresh)
        #expect(text(second.value) == "v1")
        await worker.cache.waitForBackgroundWork()
        #expect(upstream.count == 2)
        await worker.stop()
    }
}
