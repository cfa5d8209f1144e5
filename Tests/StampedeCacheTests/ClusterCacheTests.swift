import RedisClient
import RedisTestSupport
import StampedeCache
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

    @Test("invalidate(tag:) deletes entries spread over several slots; invalidateAll retires every entry")
    func crossSlotInvalidation() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let worker = try await Worker.start(cluster.url, namespace: uniqueNamespace(), policy: testPolicy())
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
