@testable import RedisClient
import RedisTestSupport
@testable import StampedeCache
import Synchronization
import Testing

/// The cache unchanged on a real 3-primary Redis Cluster: one computation per key across a fleet,
/// followers woken by notices relayed between nodes, and the cross-key operations (tags over many
/// slots, namespace invalidation) that a cluster splits.
@Suite("the cache on a Redis Cluster", .serialized)
struct ClusterCacheTests {
    @Test("a fleet of 3 workers, 24 callers per key over 20 keys in every slot range: exactly 20 computations, every caller gets the value")
    func oneComputationPerKey() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let workers = try await Worker.fleet(3, url: cluster.url, namespace: uniqueNamespace(), policy: testPolicy())
            let upstream = Upstream()
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for key in 0..<20 {
                    for caller in 0..<24 {
                        let worker = workers[caller % 3]
                        group.addTask {
                            let result = try await worker.cache.value(for: "k\(key)", compute: upstream.compute("v\(key)", latency: .milliseconds(100)))
                            return String(decoding: result.value, as: UTF8.self)
                        }
                    }
                }
                return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(upstream.count == 20)
            #expect(values.count == 20 && values.values.allSatisfy { $0 == 24 }, "\(values)")
            for worker in workers { await worker.stop() }
        }
    }

    @Test("near-cache on a cluster: one tracked pair per primary serving the keys read; another worker's commits invalidate keys on every node")
    func nearCacheOnCluster() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let namespace = uniqueNamespace()
            let near = NearCacheConfiguration(maxEntries: 1_000, maxBytes: 1 << 20)
            let reader = try await Worker.start(cluster.url, namespace: namespace, policy: testPolicy(), nearCache: near)
            let writer = try await Worker.start(cluster.url, namespace: namespace, policy: testPolicy())
            // Twelve keys: with three primaries, every node serves some of them.
            let keys = (0..<12).map { "k\($0)" }
            var nodes = Set<RedisConfiguration.Endpoint>()
            for key in keys {
                _ = try await writer.cache.string(for: key) { "old-\(key)" }
                nodes.insert(try await writer.client.nodeEndpoint(routedBy: try await writer.cache.entryKeys(for: key).value))
                #expect(try await reader.cache.string(for: key) { "never" }.source == .freshHit)
                let held = try await reader.cache.string(for: key) { "never" }
                #expect(held.source == .freshHitNear && held.value == "old-\(key)")
            }
            #expect(nodes.count == 3, "the keys land on every primary")
            let opened = try #require(reader.cache.nearCacheDiagnostics).trackingConnectionsOpened
            #expect(opened == 3, "one tracked pair per primary, got \(opened)")
            for key in keys {
                _ = try await writer.cache.string(for: key, options: CacheRequestOptions(forceRefresh: true)) { "new-\(key)" }
            }
            try await eventually("every key's invalidation arrived, from every node") {
                (reader.cache.nearCacheDiagnostics?.entriesInvalidated ?? 0) >= keys.count
            }
            for key in keys {
                #expect(try await reader.cache.string(for: key) { "never" }.value == "new-\(key)")
            }
            #expect(reader.cache.nearCacheDiagnostics?.flushes == 0)
            await writer.stop()
            await reader.stop()
        }
    }

    /// One leader in `leader`, one follower in `follower`: the follower must be woken by the
    /// leader's notice (its re-check interval is 10 s). Returns the follower's result.
    private func collapse(_ key: String, leader: Worker, follower: Worker) async throws -> CacheResult<[UInt8]> {
        let gate = Gate()
        let noticesBefore = follower.cache.diagnostics.wakeupsByNotice
        let waitsBefore = follower.cache.diagnostics.followerWaits
        let leading = Task { try await leader.cache.value(for: key, compute: gate.compute("from the leader")) }
        try await eventually("the leader computes") { gate.arrived == 1 }
        let following = Task { try await follower.cache.value(for: key, compute: Upstream().compute("never")) }
        try await eventually("the follower waits") { follower.cache.diagnostics.followerWaits == waitsBefore + 1 }
        gate.open()
        _ = try await leading.value
        let result = try await following.value
        #expect(follower.cache.diagnostics.wakeupsByNotice == noticesBefore + 1)
        return result
    }

    @Test("notices travel by sharded pub/sub in the entry's slot: a follower in another worker wakes by notice, and an SSUBSCRIBE to the slot's channel on its primary hears done|E|token")
    func noticesAreShardedPerSlot() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let namespace = uniqueNamespace()
            let policy = testPolicy(recheck: .seconds(10))
            let leader = try await Worker.start(cluster.url, namespace: namespace, policy: policy)
            let follower = try await Worker.start(cluster.url, namespace: namespace, policy: policy)
            let entry = try await leader.cache.entryKeys(for: "sharded")
            let slot = HashSlot.of(entry.value)
            let channel = "stampede:notify:\(namespace):{\(SlotTag.tag(forSlot: slot))}"
            #expect(HashSlot.of(channel) == slot)
            let listener = try makeClient(cluster.url)
            let heard = Mutex<[String]>([])
            _ = try await listener.shardSubscriber.subscribe(to: channel, handler: { event in
                if case .message(let message) = event { heard.withLock { $0.append(String(buffer: message.payload)) } }
            }, onEnd: {})

            let result = try await collapse("sharded", leader: leader, follower: follower)
            #expect(result.source == .receivedFromOtherWorker && text(result.value) == "from the leader")
            #expect(follower.cache.diagnostics.wakeupsByRecheck == 0)
            try await eventually("the listener heard the commit's notice") { heard.withLock { $0 } == ["done|\(entry.id)|1"] }
            // The follower subscribed that slot's channel, on the primary serving the slot, and only it.
            #expect(follower.client.shardSubscriber.listenerCount(channel: channel) == 1)
            #expect(follower.cache.hub.subscribedChannelCount == 2)  // the namespace's channel and the slot's
            await listener.close()
            await leader.stop()
            await follower.stop()
        }
    }

    @Test("after the primary of an entry's slot fails over, followers are still woken by notices (the slot's channel moved to the promoted replica)")
    func noticesSurviveAFailover() async throws {
        try await withTestCluster { cluster in
            let namespace = uniqueNamespace()
            let policy = testPolicy(recheck: .seconds(10))
            let leader = try await Worker.start(cluster.url, namespace: namespace, policy: policy)
            let follower = try await Worker.start(cluster.url, namespace: namespace, policy: policy)
            let entry = try await leader.cache.entryKeys(for: "survivor")
            let channel = follower.cache.keySpace.noticeChannel(for: entry, cluster: true)
            #expect(try await collapse("survivor", leader: leader, follower: follower).source == .receivedFromOtherWorker)
            guard let primary = follower.client.shardSubscriber.node(of: channel), case .tcp(_, let port) = primary else {
                Issue.record("the slot channel is not placed")
                return
            }
            let promoted = try await cluster.failover(primaryPort: port)
            try await eventually("the follower's slot channel moved to the promoted replica", limit: .seconds(60)) {
                follower.client.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: promoted)
            }
            try await leader.cache.invalidate(key: "survivor")
            let again = try await collapse("survivor", leader: leader, follower: follower)
            #expect(again.source == .receivedFromOtherWorker && text(again.value) == "from the leader")
            #expect(follower.cache.diagnostics.wakeupsByRecheck == 0)
            await leader.stop()
            await follower.stop()
        }
    }

    @Test("invalidate(tag:) deletes entries spread over several slots; invalidateAll retires every entry")
    func crossSlotInvalidation() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            // A fixed namespace (the cluster is this test's own): CRC16 is linear, so with some random
            // namespaces a few of these 30 keys share a slot; with this one all 30 slots differ.
            let worker = try await Worker.start(cluster.url, namespace: "tags", policy: testPolicy())
            let upstream = Upstream()
            let keys = (0..<30).map { "tagged-\($0)" }
            for key in keys { _ = try await worker.cache.value(for: key, options: .init(tags: ["catalog"]), compute: upstream.compute("x")) }
            let slots = Set(try await keys.asyncMap { HashSlot.of(try await worker.cache.entryKeys(for: $0).value) })
            #expect(slots.count == 30, "the entries are in \(slots.count) slots")
            #expect(try await worker.cache.invalidate(tag: "catalog") == 30)
            for key in keys.prefix(5) { #expect(try await worker.cache.value(for: key, compute: upstream.compute("y")).source == .computed) }
            try await worker.cache.invalidateAll()
            #expect(try await worker.cache.value(for: keys[0], compute: upstream.compute("z")).source == .computed)
            #expect(upstream.count == 30 + 5 + 1)
            await worker.stop()
        }
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
