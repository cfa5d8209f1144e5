import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
@testable import StampedeCache
import Synchronization
import Testing

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
