import Logging
import RedisClient
import RedisTestSupport
import ServiceLifecycle
@testable import StampedeCache
import Synchronization
import Testing

@Suite("StampedeCache: one lifetime, run by a ServiceGroup", .sharedRedis)
struct LifetimeTests {
    @Test("a notice channel the start could not subscribe is subscribed by the background loop once it can be")
    func channelSubscribedLaterByTheLoop() async throws {
        try await withPrivateRedis { server in
            let admin = try makeClient(server.url)
            // A user that may not subscribe to any channel yet.
            _ = try await admin.send("ACL", "SETUSER", "worker", "on", ">pw", "~*", "resetchannels", "+@all")
            let namespace = uniqueNamespace()
            let worker = try await Worker.start(server.url + "?user=worker&password=pw", namespace: namespace, policy: testPolicy())
            let channel = worker.cache.keySpace.channel
            #expect(!worker.cache.hub.isSubscribed(channel))  // NOPERM at start: followers would poll
            #expect(worker.cache.diagnostics.channelResubscribes == 0)
            _ = try await admin.send("ACL", "SETUSER", "worker", RedisArgument("&" + channel))
            try await eventually("the loop subscribed the channel") { worker.cache.diagnostics.channelResubscribes == 1 }
            #expect(worker.cache.hub.isSubscribed(channel))
            #expect(worker.client.shardSubscriber.listenerCount(channel: channel) == 1)
            await worker.stop()
            await admin.close()
        }
    }

    @Test("a closed cache refuses new work with CacheError.closed, and its notice channel is unsubscribed for good")
    func closedIsFinal() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let channel = worker.cache.keySpace.channel
        #expect(worker.client.shardSubscriber.listenerCount(channel: channel) == 1)
        await worker.cache.close()
        #expect(worker.cache.isClosed)
        await #expect(throws: CacheError(code: .closed, message: CacheError.closed(namespace: worker.cache.namespace).message)) {
            _ = try await worker.cache.value(for: "k") { [1] }
        }
        do {
            _ = try await worker.cache.invalidate(key: "k")
            Issue.record("invalidate worked on a closed cache")
        } catch CacheError.Code.closed {}
        #expect(worker.client.shardSubscriber.listenerCount(channel: channel) == 0)
        // Nothing subscribes it again, even when asked.
        #expect(try await worker.cache.hub.ensureSubscribed(channel) == false)
        #expect(worker.client.shardSubscriber.listenerCount(channel: channel) == 0)
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
        #expect(client.shardSubscriber.listenerCount(channel: channel) == 1)
        #expect(client.shardSubscriber.listenerCount(channel: second.keySpace.channel) == 0)
        await first.close()
        await second.close()
        await client.close()
    }

    @Test("in a ServiceGroup: graceful shutdown waits for the computation in flight, stores it, then closes the cache")
    func gracefulShutdownStoresInFlightWork() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        // A compute timeout far beyond the steps below, however loaded the machine: the gate, not
        // the timeout, must end the computation.
        let policy = testPolicy(computeTimeout: .seconds(60), lockTTL: .seconds(70))
        let cache = try StampedeCache(redis: client, namespace: uniqueNamespace(), policy: policy, logger: TestRedis.logger)
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
