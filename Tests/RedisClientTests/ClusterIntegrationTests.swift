import Foundation
import LocalServices
import NIOCore
@testable import RedisClient
import RedisServerProcess
import RedisTestSupport
import Testing

/// The client against a real loopback Redis Cluster that the test starts itself (3 primaries,
/// 3 replicas, `redis-cli --cluster create`): routing, pipelines, scripts, scans, pub/sub,
/// resharding (ASK/MOVED under way) and failover.
@Suite("Redis Cluster against real redis-server nodes", .serialized)
struct ClusterIntegrationTests {
    private func client(_ url: String, poolSize: Int = 2) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url, environment: [:])
        configuration.poolSize = poolSize
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
        return try RedisClient(configuration: configuration, logger: TestRedis.logger)
    }

    /// Keys whose slots are spread over the whole range.
    private static let keys = (0..<300).map { "cluster-test:key:\($0)" }

    @Test("one node's URL is enough: the cluster is detected and all 300 keys (every primary) are written and read; redis+cluster:// works too")
    func detectsAndRoutes() async throws {
        try await withTestCluster { cluster in
            let client = try client(cluster.url)
            #expect(try await client.isCluster())
            for key in Self.keys { try await client.set(key, to: RedisArgument(key)) }
            var read = 0
            for key in Self.keys where try await client.get(key).map({ String(buffer: $0) }) == key { read += 1 }
            #expect(read == 300)
            let primaries = try await client.primaries()
            #expect(primaries.count == 3)
            // Each primary holds its share: the keys really are spread (no node has them all).
            let sizes = try await client.sendToEveryPrimary(RedisCommand("DBSIZE")).compactMap(\.int)
            #expect(sizes.count == 3 && sizes.reduce(0, +) == 300 && sizes.allSatisfy { $0 > 0 && $0 < 300 }, "\(sizes)")
            await client.close()

            let seeded = try self.client(cluster.clusterURL)
            #expect(try await seeded.get(Self.keys[7]).map { String(buffer: $0) } == Self.keys[7])
            await seeded.close()
        }
    }

    @Test("pipelines across slots come back in order; DEL across slots sums; MGET across slots is a .crossSlot error; tagged keys share a slot")
    func pipelinesAndCrossSlot() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let client = try client(cluster.url)
            let sets = Self.keys.prefix(100).map { RedisCommand("SET", RedisArgument($0), RedisArgument("v-\($0)")) }
            let setReplies = try await client.send(pipeline: sets)
            #expect(setReplies.allSatisfy { $0.string == "OK" })
            let gets = Self.keys.prefix(100).map { RedisCommand("GET", RedisArgument($0)) }
            let values = try await client.send(pipeline: gets).map(\.string)
            #expect(values == Self.keys.prefix(100).map { "v-\($0)" })
            let removed = try await client.delete(Array(Self.keys.prefix(50)))
            #expect(removed == 50)
            #expect(try await client.send(RedisCommand("EXISTS", Self.keys.prefix(100).map { RedisArgument($0) })).int == 50)
            let error = await expectRedisError { try await client.send(RedisCommand("MGET", "foo", "bar")) }
            #expect(error?.code == .crossSlot)
            #expect(error?.message.contains("hash tag") == true)
            try await client.set("{user42}:a", to: "1")
            try await client.set("{user42}:b", to: "2")
            #expect(try await client.send("MGET", "{user42}:a", "{user42}:b").array?.map(\.string) == ["1", "2"])
            await client.close()
        }
    }

    @Test("scripts run on the primary of their keys; after SCRIPT FLUSH on every primary each node reloads its own (NOSCRIPT handled per node)")
    func scriptsPerNode() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let client = try client(cluster.url)
            let script = RedisScript(name: "incr", source: "return redis.call('INCRBY', KEYS[1], ARGV[1])")
            for key in Self.keys.prefix(30) { _ = try await client.evalSHA(script, keys: [RedisArgument(key)], args: ["2"]) }
            _ = try await client.sendToEveryPrimary(RedisCommand("SCRIPT", "FLUSH"))
            var total: Int64 = 0
            for key in Self.keys.prefix(30) { total += try await client.evalSHA(script, keys: [RedisArgument(key)], args: ["3"]).int ?? 0 }
            #expect(total == 30 * 5)
            let loaded = try await client.sendToEveryPrimary(RedisCommand("SCRIPT", "EXISTS", RedisArgument(script.sha1)))
            #expect(loaded.map { $0.array?.first?.int } == [1, 1, 1])
            await client.close()
        }
    }

    @Test("SCAN visits every primary; a message published through one node reaches a subscriber on another")
    func scanAndPubSub() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let client = try client(cluster.url)
            for key in Self.keys { try await client.set(key, to: "x") }
            var seen = Set<String>()
            try await client.scanKeys(matching: "cluster-test:key:*", count: 50) { keys in
                seen.formUnion(keys)
                return true
            }
            #expect(seen.count == 300)
            let subscription = try await client.subscriber.subscribe(to: ["cluster-news"])
            let publisher = try self.client("redis://127.0.0.1:\(cluster.ports[2])")
            // On a cluster PUBLISH counts the receivers of the node it ran on only (here often 0);
            // the cluster bus still delivers it to the subscriber on the other node.
            _ = try await publisher.publish("hello", to: "cluster-news")
            var iterator = subscription.makeAsyncIterator()
            guard case .message(let message) = await iterator.next() else { Issue.record("no message"); return }
            #expect(String(buffer: message.payload) == "hello")
            await publisher.close()
            await client.close()
        }
    }

    @Test("resharding under the client's feet: MOVED is followed, the map is patched, every value stays readable")
    func followsMovedAfterReshard() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let client = try client(cluster.url)
            // Keys in the first 200 slots: redis-cli --cluster create gives slot 0 to the first node,
            // and reshard moves the source's lowest slots first.
            var keys: [String] = []
            var candidate = 0
            while keys.count < 40 {
                let key = "reshard:\(candidate)"
                if HashSlot.of(key) < 200 { keys.append(key) }
                candidate += 1
            }
            for key in keys { try await client.set(key, to: RedisArgument(key)) }
            let before = try #require(client.router.topology.primary(forSlot: 0))
            try await cluster.reshard(from: cluster.ports[0], to: cluster.ports[1], slots: 200)
            var read = 0
            for key in keys where try await client.get(key).map({ String(buffer: $0) }) == key { read += 1 }
            #expect(read == 40)
            let after = try #require(client.router.topology.primary(forSlot: 0))
            #expect(after != before)
            #expect(after == .tcp(host: "127.0.0.1", port: cluster.ports[1]))
            await client.close()
        }
    }

    @Test("slots migrating key by key under concurrent writes and scripts: ASK and TRYAGAIN are waited out, no command fails, every value is right")
    func migrationUnderLoad() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let client = try client(cluster.url, poolSize: 2)
            let script = RedisScript(name: "pair", source: "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])")
            let keys = (0..<200).map { "migrate:{\($0)}" }
            for key in keys { try await client.set(key + ":a", to: "0"); try await client.set(key + ":b", to: "0") }
            let firstOwned = keys.filter { client.router.topology.primary(forSlot: HashSlot.of($0)) == .tcp(host: "127.0.0.1", port: cluster.ports[0]) }
            async let load: Int = {
                var failures = 0
                for round in 0..<10 {
                    for key in keys {
                        do {
                            _ = try await client.evalSHA(script, keys: [RedisArgument(key + ":a"), RedisArgument(key + ":b")], args: [RedisArgument(round)])
                        } catch {
                            failures += 1
                        }
                    }
                }
                return failures
            }()
            let moved = try await cluster.migrateSlots(ofKeysMatching: "migrate:*", from: cluster.ports[0], to: cluster.ports[1], maxSlots: 40)
            let failures = try await load
            #expect(moved.count == min(40, Set(firstOwned.map { HashSlot.of($0) }).count), "\(moved.count) slots moved")
            #expect(failures == 0)
            let values = try await client.send(pipeline: keys.flatMap { [RedisCommand("GET", RedisArgument($0 + ":a")), RedisCommand("GET", RedisArgument($0 + ":b"))] })
            #expect(values.allSatisfy { $0.string == "10" }, "\(values.prefix(6))")
            await client.close()
        }
    }

    @Test("failover: after the primary's replica takes over, commands for its slots succeed again on the new primary")
    func survivesFailover() async throws {
        try await withTestCluster { cluster in
            let client = try client(cluster.url)
            for key in Self.keys { try await client.set(key, to: RedisArgument(key)) }
            let oldPrimary = cluster.ports[0]
            let newPrimary = try await cluster.failover(primaryPort: oldPrimary)
            // Keys of the old primary's slots: MOVED to the promoted replica.
            let moved = Self.keys.filter { client.router.topology.primary(forSlot: HashSlot.of($0)) == .tcp(host: "127.0.0.1", port: oldPrimary) }
            #expect(!moved.isEmpty)
            var read = 0
            for key in moved where try await client.get(key).map({ String(buffer: $0) }) == key { read += 1 }
            #expect(read == moved.count)
            #expect(client.router.topology.primary(forSlot: HashSlot.of(moved[0])) == .tcp(host: "127.0.0.1", port: newPrimary))

            // Now kill the new primary outright: its replica (the old primary) is promoted by the
            // cluster after the node timeout; the client gets errors meanwhile, then recovers.
            let victim = try #require(cluster.nodes.first { $0.port == newPrimary })
            victim.kill(signal: SIGKILL)
            var attempts = 0
            while true {
                attempts += 1
                do {
                    #expect(try await client.get(moved[0]).map { String(buffer: $0) } == moved[0])
                    break
                } catch let error as RedisError {
                    #expect(error.code == .connection || error.code == .timeout || error.code == .server, "\(error)")
                    if attempts > 600 { Issue.record("no recovery after the primary was killed: \(error)"); break }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(client.router.topology.primary(forSlot: HashSlot.of(moved[0])) == .tcp(host: "127.0.0.1", port: oldPrimary))
            await client.close()
        }
    }
}
