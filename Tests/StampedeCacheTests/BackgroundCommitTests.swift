import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Synchronization
import Testing

/// `CachePolicy.commitInBackground`: the computing worker's callers are answered before the
/// commit, and nothing of the fleet's guarantees changes. Redis's `CLIENT PAUSE … WRITE` holds
/// every write (the commit script among them) while reads are still answered, so each test can
/// look at the moment between the answer and the commit.
@Suite("StampedeCache: committing in the background")
struct BackgroundCommitTests {
    /// A worker whose commands may wait out a long pause (the shared helper's 5 s timeout may not).
    private func worker(_ url: String, namespace: String, policy: CachePolicy) async throws -> Worker {
        let client = try makeClient(url, poolSize: 1, commandTimeout: .seconds(120))
        let cache = try StampedeCache(redis: client, namespace: namespace, policy: policy, logger: TestRedis.logger)
        await cache.start()
        return Worker(client: client, cache: cache, running: BackgroundRun(cache.run))
    }

    /// Two workers of one namespace on a private server, and a write pause on an admin client.
    private func withFleet(commitInBackground: Bool, _ body: (_ leader: Worker, _ other: Worker, _ pause: WritePause) async throws -> Void) async throws {
        try await withPrivateRedis { server in
            var policy = testPolicy(computeTimeout: .seconds(10), lockTTL: .seconds(60), recheck: .seconds(30))
            policy.commitInBackground = commitInBackground
            let namespace = uniqueNamespace()
            let leader = try await worker(server.url, namespace: namespace, policy: policy)
            let other = try await worker(server.url, namespace: namespace, policy: policy)
            let pause = WritePause(try makeClient(server.url, commandTimeout: .seconds(120)))
            try await body(leader, other, pause)
            await pause.admin.close()
            await leader.stop()
            await other.stop()
        }
    }

    /// Pauses every write on the server until ``resume(_:)``, or for 30 s at most: if the caller
    /// under test is (wrongly) held until the commit, the pause ends and ``endedByItself`` says so.
    private final class WritePause: Sendable {
        let admin: RedisClient
        private let expired = Atomic<Bool>(false)
        private let watchdog = Mutex<Task<Void, Never>?>(nil)

        init(_ admin: RedisClient) { self.admin = admin }

        func start() async throws {
            try await admin.send("CLIENT", "PAUSE", "30000", "WRITE")
            let task = Task { [self] in
                // A bound for a failing test only: a passing one resumes the writes itself first.
                if (try? await Task.sleep(for: .seconds(29))) != nil { self.expired.store(true, ordering: .relaxed) }
            }
            watchdog.withLock { $0 = task }
        }

        var endedByItself: Bool { expired.load(ordering: .relaxed) }

        func resume() async throws {
            watchdog.withLock { $0?.cancel() }
            try await admin.send("CLIENT", "UNPAUSE")
        }
    }

    @Test("the leader's caller gets the value before the commit; this process's next caller gets it from memory; once the commit lands every worker reads it; one upstream call")
    func answeredBeforeTheCommit() async throws {
        try await withFleet(commitInBackground: true) { leader, other, pause in
            let admin = pause.admin
            let upstream = Upstream()
            let entry = try await leader.cache.entryKeys(for: "k")

            // The computation pauses every write, its commit included, before it returns.
            let first = try await leader.cache.value(for: "k") {
                try await pause.start()
                return try await upstream.compute("v1")()
            }
            #expect(text(first.value) == "v1")
            #expect(first.source == .computed)
            #expect(first.notCachedBecause == nil)
            #expect(first.freshUntilMillis == nil, "the commit, not yet answered, sets it")
            #expect(first.remainingFreshness == .seconds(60), "freshFor × (1 - ttlJitter 0)")
            #expect(try await admin.get(entry.value) == nil, "nothing is stored yet")
            #expect(try await admin.send("GET", RedisArgument(entry.lock)).isNull == false, "the leader still holds the lock")

            let again = try await leader.cache.value(for: "k", compute: upstream.compute("v2"))
            #expect(text(again.value) == "v1")
            #expect(again.source == .joinedInProcess)
            #expect(again.coalesced)
            #expect(!pause.endedByItself, "both callers were answered while the commit was held")
            #expect(leader.cache.pendingCommits.pendingCount == 1)

            try await pause.resume()
            await leader.cache.waitForBackgroundWork()
            #expect(leader.cache.pendingCommits.pendingCount == 0)
            #expect(leader.cache.diagnostics.failedCommits == 0)
            #expect(leader.cache.diagnostics.rejectedCommits == 0)
            let elsewhere = try await other.cache.value(for: "k", compute: upstream.compute("v3"))
            #expect(text(elsewhere.value) == "v1")
            #expect(elsewhere.source == .freshHit)
            let here = try await leader.cache.value(for: "k", compute: upstream.compute("v4"))
            #expect(here.source == .freshHit)
            #expect(upstream.count == 1)
        }
    }

    @Test("another worker asking while the commit is held waits for it and receives the value: the upstream is called once")
    func otherWorkersWaitForTheBackgroundCommit() async throws {
        try await withFleet(commitInBackground: true) { leader, other, pause in
            let upstream = Upstream()

            let first = try await leader.cache.value(for: "k") {
                try await pause.start()
                return try await upstream.compute("v1")()
            }
            #expect(first.source == .computed)
            #expect(!pause.endedByItself)
            // Its get-or-lock is held by the pause, then finds the leader's lock or its commit.
            let asking = Task { try await other.cache.value(for: "k", compute: upstream.compute("v2")) }
            try await pause.resume()
            let received = try await asking.value
            #expect(text(received.value) == "v1")
            #expect([CacheSource.receivedFromOtherWorker, .freshHit].contains(received.source))
            #expect(upstream.count == 1)
            await leader.cache.waitForBackgroundWork()
            #expect(leader.cache.diagnostics.failedCommits == 0)
        }
    }

    @Test("without commitInBackground the leader's caller is answered only once the commit has landed")
    func theDefaultAnswersAfterTheCommit() async throws {
        #expect(!CachePolicy().commitInBackground)
        try await withFleet(commitInBackground: false) { leader, _, pause in
            let admin = pause.admin
            let entry = try await leader.cache.entryKeys(for: "k")
            let paused = Atomic<Bool>(false), answered = Atomic<Bool>(false)
            let asking = Task {
                let answer = try await leader.cache.value(for: "k") {
                    try await pause.start()
                    paused.store(true, ordering: .relaxed)
                    return Array("v1".utf8)
                }
                answered.store(true, ordering: .relaxed)
                return answer
            }
            try await waitUntil("the computation paused the writes") { paused.load(ordering: .relaxed) }
            // The commit waits for the pause; the caller waits for the commit.
            #expect(try await admin.get(entry.value) == nil)
            let answeredWhilePaused = answered.load(ordering: .relaxed)
            #expect(!answeredWhilePaused)
            try await pause.resume()
            let answer = try await asking.value
            #expect(answer.source == .computed)
            #expect(answer.freshUntilMillis != nil)
            #expect(try await admin.get(entry.value) != nil)
        }
    }
}
