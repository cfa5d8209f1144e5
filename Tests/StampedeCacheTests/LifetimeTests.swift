import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
@testable import StampedeCache
import Synchronization
import Testing

/// A gate a compute closure waits at until the test opens it (no sleeps to order events).
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let arrivals = Atomic<Int>(0)
    private let cancellations = Atomic<Int>(0)

    /// How many computations reached the gate.
    var arrived: Int { arrivals.load(ordering: .relaxed) }
    /// How many computations were cancelled while waiting at the gate.
    var cancelled: Int { cancellations.load(ordering: .relaxed) }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// A compute closure that waits at the gate (or until cancelled), then returns `value`.
    func compute(_ value: String) -> @Sendable () async throws -> [UInt8] {
        { [self] in
            arrivals.add(1, ordering: .relaxed)
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let isOpen = state.withLock { state in
                        if !state.open { state.waiters.append(continuation) }
                        return state.open
                    }
                    if isOpen { continuation.resume() }
                }
            } onCancel: {
                self.cancellations.add(1, ordering: .relaxed)
                self.open()
            }
            try Task.checkCancellation()
            return Array(value.utf8)
        }
    }
}

@Suite("StampedeCache: one lifetime, run by a ServiceGroup", .sharedRedis)
struct LifetimeTests {
    @Test("a closed cache refuses new work with CacheError.closed, and its notice channel is unsubscribed for good")
    func closedIsFinal() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let channel = worker.cache.keySpace.channel
        #expect(worker.client.subscriber.listenerCount(channel: channel) == 1)
        await worker.cache.close()
        #expect(worker.cache.isClosed)
        await #expect(throws: CacheError(code: .closed, message: CacheError.closed(namespace: worker.cache.namespace).message)) {
            _ = try await worker.cache.value(for: "k") { [1] }
        }
        do {
            _ = try await worker.cache.invalidate(key: "k")
            Issue.record("invalidate worked on a closed cache")
        } catch CacheError.Code.closed {}
        #expect(worker.client.subscriber.listenerCount(channel: channel) == 0)
        // Nothing subscribes it again, even when asked.
        #expect(try await worker.cache.hub.ensureSubscribed(channel) == false)
        #expect(worker.client.subscriber.listenerCount(channel: channel) == 0)
        await worker.stop()
    }

    @Test("every namespace's cache on one client shares one notice hub with one listener per channel, however many callers subscribe at once")
    func oneHubPerClient() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let first = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
        let second = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
        #expect(first.hub === second.hub)
        let channel = first.keySpace.channel
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 { group.addTask { try await first.hub.ensureSubscribed(channel) } }
            for try await subscribed in group { #expect(subscribed) }
        }
        #expect(client.subscriber.listenerCount(channel: channel) == 1)
        #expect(client.subscriber.listenerCount(channel: second.keySpace.channel) == 0)
        await first.close()
        await second.close()
        await client.close()
    }

    @Test("in a ServiceGroup: graceful shutdown waits for the computation in flight, stores it, then closes the cache")
    func gracefulShutdownStoresInFlightWork() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let cache = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
        let gate = Gate()
        let group = ServiceGroup(services: [client, cache], logger: TestRedis.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let caller = Task { try await cache.value(for: "k", compute: gate.compute("v")) }
            try await eventually("the computation started") { gate.arrived == 1 }
            caller.cancel()  // the caller leaves; the computation is the cache's
            await group.triggerGracefulShutdown()
            try await eventually("the cache is closing") { cache.isClosed }
            gate.open()
            try await tasks.waitForAll()
            await #expect(throws: CancellationError.self) { try await caller.value }
        }
        #expect(gate.cancelled == 0)
        let reader = try makeClient(try TestRedis.sharedURL)
        let check = try StampedeCache(redis: reader, namespace: cache.namespace, policy: testPolicy(), logger: TestRedis.logger)
        let stored = try await check.value(for: "k") { Array("recomputed".utf8) }
        #expect(stored.source == .freshHit)
        #expect(text(stored.value) == "v")
        await check.close()
        await reader.close()
    }

    @Test("run() cancelled (not a graceful shutdown) cancels the computations in flight and closes")
    func cancelledRunCancelsWork() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let cache = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
        let gate = Gate()
        let running = Task { try await cache.run() }
        let caller = Task { try await cache.value(for: "k", compute: gate.compute("v")) }
        try await eventually("the computation started") { gate.arrived == 1 }
        running.cancel()
        try await running.value
        #expect(gate.cancelled == 1)
        #expect(cache.isClosed)
        _ = await caller.result
        await client.close()
    }

    @Test("run() twice, or after close(), is refused")
    func runOnce() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let cache = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: testPolicy(), logger: TestRedis.logger)
        await cache.close()
        await #expect(throws: CacheError.self) { try await cache.run() }
        await client.close()
    }
}

@Suite("StampedeCache: honest cancellation", .sharedRedis)
struct CancellationTests {
    @Test("a cancelled follower gets CancellationError at once, not the value later and not a CacheError")
    func cancelledFollowerLeaves() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let leader = try await Worker.start(url, namespace: namespace, policy: testPolicy(computeTimeout: .seconds(30), lockTTL: .seconds(40)))
        let follower = try await Worker.start(url, namespace: namespace, policy: testPolicy(computeTimeout: .seconds(30), lockTTL: .seconds(40)))
        let gate = Gate()
        let leading = Task { try await leader.cache.value(for: "k", compute: gate.compute("v")) }
        try await eventually("the leader computes") { gate.arrived == 1 }
        let following = Task { try await follower.cache.value(for: "k") { Array("never".utf8) } }
        try await eventually("the follower waits") { follower.cache.diagnostics.followerWaits == 1 }
        following.cancel()
        let result = await following.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(follower.cache.hub.waiterCount == 0)
        gate.open()
        #expect(text(try await leading.value.value) == "v")
        await leader.stop()
        await follower.stop()
    }

    @Test("a cancelled leading caller does not fail the 4 callers that joined it: they get its computation, computed once")
    func cancelledLeaderKeepsJoiners() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let gate = Gate()
        let compute = gate.compute("v")
        let leading = Task { try await worker.cache.value(for: "k", compute: compute) }
        try await eventually("the leader computes") { gate.arrived == 1 }
        let joiners = (0..<4).map { _ in Task { try await worker.cache.value(for: "k", compute: compute) } }
        try await eventually("4 callers joined") { worker.cache.diagnostics.coalesced == 4 }
        leading.cancel()
        await #expect(throws: CancellationError.self) { try await leading.value }
        gate.open()
        for joiner in joiners {
            let result = try await joiner.value
            #expect(text(result.value) == "v")
            #expect(result.source == .joinedInProcess)
        }
        #expect(gate.arrived == 1)
        #expect(gate.cancelled == 0)
        await worker.stop()
    }

    @Test("a stored computation whose only caller left still commits, once, for the fleet")
    func abandonedComputationStillCommits() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let worker = try await Worker.start(url, namespace: namespace, policy: testPolicy())
        let gate = Gate()
        let leading = Task { try await worker.cache.value(for: "k", compute: gate.compute("v")) }
        try await eventually("the leader computes") { gate.arrived == 1 }
        leading.cancel()
        await #expect(throws: CancellationError.self) { try await leading.value }
        gate.open()
        await worker.cache.waitForBackgroundWork()
        let other = try await Worker.start(url, namespace: namespace, policy: testPolicy())
        let read = try await other.cache.value(for: "k") { Array("again".utf8) }
        #expect(read.source == .freshHit)
        #expect(text(read.value) == "v")
        #expect(gate.cancelled == 0)
        await worker.stop()
        await other.stop()
    }

    @Test("noStore: when every caller waiting for the computation has gone, the computation is cancelled")
    func unwantedUnstoredComputationIsCancelled() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let gate = Gate()
        let compute = gate.compute("v")
        let options = CacheRequestOptions(noStore: true)
        let first = Task { try await worker.cache.value(for: "k", options: options, compute: compute) }
        try await eventually("the computation started") { gate.arrived == 1 }
        let second = Task { try await worker.cache.value(for: "k", options: options, compute: compute) }
        try await eventually("a second caller joined") { worker.cache.diagnostics.coalesced == 1 }
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        #expect(gate.cancelled == 0, "the joined caller still wants it")
        second.cancel()
        await #expect(throws: CancellationError.self) { try await second.value }
        try await eventually("the computation was cancelled") { gate.cancelled == 1 }
        await worker.cache.waitForBackgroundWork()
        #expect(gate.arrived == 1)
        await worker.stop()
    }

    @Test("errors match by code in a catch clause: CacheError.Code.waitTimedOut")
    func errorCodesMatchInCatch() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let error: any Error = CacheError.waitTimedOut(key: "k", waited: .seconds(1))
        switch error {
        case CacheError.Code.computationTimedOut: Issue.record("matched the wrong code")
        case CacheError.Code.waitTimedOut: break
        default: Issue.record("did not match")
        }
        #expect(String(describing: error).hasPrefix("waitTimedOut: waited 1.0 seconds"))
        await worker.stop()
    }
}
