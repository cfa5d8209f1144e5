import LocalServices
import NIOCore
@testable import RedisClient
import RedisTestSupport
import Synchronization
import Testing

/// Sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`) on one server and on a real loopback cluster: each
/// channel on the node serving its slot, following its slot through `MOVED`, a slot move, a
/// coordinated failover and a killed primary.
@Suite("sharded pub/sub against real redis-server nodes", .serialized)
struct ShardedPubSubTests {
    /// What one listener received, in order.
    final class Received: Sendable {
        private let events = Mutex<[String]>([])
        var all: [String] { events.withLock { $0 } }
        var messages: [String] { all.filter { $0 != "<reconnected>" } }
        var reconnects: Int { all.filter { $0 == "<reconnected>" }.count }

        func record(_ event: RedisPubSubEvent) {
            switch event {
            case .message(let message): events.withLock { $0.append(String(buffer: message.payload)) }
            case .reconnected: events.withLock { $0.append("<reconnected>") }
            case .overflow: events.withLock { $0.append("<overflow>") }
            }
        }
    }

    private func client(_ url: String) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url, environment: [:])
        configuration.poolSize = 1
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
        return try RedisClient(configuration: configuration, logger: TestRedis.logger)
    }

    /// A shard channel whose slot is served by the primary at `port`.
    private func channel(on port: Int, of cluster: LocalCluster, name: String) async throws -> (channel: String, slot: Int) {
        let lines = try await cluster.clusterNodes()
        guard let node = lines.first(where: { $0.port == port }), let range = node.slots.first,
              let first = Int(range.split(separator: "-")[0]) else { throw LocalServicesError("no slots on \(port)") }
        let slot = first + 7
        return ("\(name):{\(SlotTag.tag(forSlot: slot))}", slot)
    }

    @Test("on one server, SPUBLISH reaches a shard subscriber; a classic PUBLISH of the same name does not")
    func standaloneShardChannel() async throws {
        try await withPrivateRedis { server in
            let client = try self.client(server.url)
            let received = Received()
            _ = try await client.shardSubscriber.subscribe(to: "orders", handler: received.record, onEnd: {})
            #expect(try await client.publish("classic", to: "orders") == 0)
            #expect(try await client.spublish("sharded", to: "orders") == 1)
            try await waitUntil("the sharded message arrived") { received.messages == ["sharded"] }
            #expect(client.subscriber.listenerCount(channel: "orders", shard: true) == 1)
            #expect(client.subscriber.listenerCount(channel: "orders") == 0)
            await client.close()
        }
    }

    @Test("on a cluster each shard channel is subscribed on the primary serving its slot (one connection per primary) and receives SPUBLISH sent through any node")
    func placedOnTheSlotsPrimary() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let client = try self.client(cluster.url)
            let publisher = try self.client("redis://127.0.0.1:\(cluster.ports[2])")
            var subscriptions: [(String, Int, Received)] = []
            for port in cluster.ports {
                let (channel, _) = try await channel(on: port, of: cluster, name: "news")
                let received = Received()
                _ = try await client.shardSubscriber.subscribe(to: channel, handler: received.record, onEnd: {})
                #expect(client.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: port))
                subscriptions.append((channel, port, received))
            }
            #expect(client.shardSubscriber.nodeSubscriberCount == 3)
            for (channel, port, _) in subscriptions {
                #expect(try await publisher.spublish(RedisArgument("to \(port)"), to: channel) == 1)
            }
            for (_, port, received) in subscriptions {
                try await waitUntil("the message for \(port) arrived") { received.messages == ["to \(port)"] }
            }
            // Leaving a channel closes its node's connection once nothing else uses it.
            let lastID = try await client.shardSubscriber.subscribe(to: subscriptions[0].0, handler: { _ in }, onEnd: {})
            client.shardSubscriber.unsubscribe(listener: lastID, from: subscriptions[0].0)
            #expect(client.shardSubscriber.listenerCount(channel: subscriptions[0].0) == 1)
            await publisher.close()
            await client.close()
        }
    }

    @Test("a slot moved to another primary: Redis drops the channel, the listener is told twice (dropped, placed), the channel is on the new node, and a client with the old map follows MOVED")
    func followsASlotMove() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            let (source, target) = (cluster.ports[0], cluster.ports[1])
            let (channel, slot) = try await channel(on: source, of: cluster, name: "moving")
            let client = try self.client(cluster.url)
            let stale = try self.client(cluster.url)
            _ = try await stale.primaries()  // loads the map before the move
            let received = Received()
            _ = try await client.shardSubscriber.subscribe(to: channel, handler: received.record, onEnd: {})
            #expect(client.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: source))

            try await cluster.moveSlot(slot, from: source, to: target)
            try await waitUntil("the channel is subscribed on the new primary") {
                client.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: target)
            }
            #expect(received.reconnects == 2, "\(received.all)")
            let publisher = try self.client("redis://127.0.0.1:\(target)")
            #expect(try await publisher.spublish("after the move", to: channel) == 1)
            try await waitUntil("the message after the move arrived") { received.messages == ["after the move"] }

            // A client whose map predates the move sends SSUBSCRIBE to the old node and follows MOVED.
            let late = Received()
            _ = try await stale.shardSubscriber.subscribe(to: channel, handler: late.record, onEnd: {})
            #expect(stale.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: target))
            #expect(try await publisher.spublish("both", to: channel) == 2)
            try await waitUntil("both listeners got it") { late.messages == ["both"] && received.messages.last == "both" }
            for client in [client, stale, publisher] { await client.close() }
        }
    }

    @Test("a coordinated failover (CLUSTER FAILOVER): the demoted primary drops the channel and it is subscribed on the promoted replica")
    func followsACoordinatedFailover() async throws {
        try await withTestCluster { cluster in
            let primary = cluster.ports[0]
            let (channel, _) = try await channel(on: primary, of: cluster, name: "failover")
            let client = try self.client(cluster.url)
            let received = Received()
            _ = try await client.shardSubscriber.subscribe(to: channel, handler: received.record, onEnd: {})
            let promoted = try await cluster.failover(primaryPort: primary)
            try await waitUntil("the channel is on the promoted replica") {
                client.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: promoted)
            }
            let publisher = try self.client(cluster.url)
            #expect(try await publisher.spublish("after failover", to: channel) == 1)
            try await waitUntil("the message arrived") { received.messages == ["after failover"] }
            #expect(received.reconnects == 2, "\(received.all)")
            await publisher.close()
            await client.close()
        }
    }

    @Test("a killed primary: the lost connection displaces its channels, which are subscribed on the promoted replica once the cluster has one")
    func followsAKilledPrimary() async throws {
        try await withTestCluster { cluster in
            let primary = cluster.ports[0]
            let (channel, _) = try await channel(on: primary, of: cluster, name: "killed")
            let client = try self.client(cluster.url)
            let received = Received()
            _ = try await client.shardSubscriber.subscribe(to: channel, handler: received.record, onEnd: {})
            let promoted = try await cluster.killPrimary(port: primary)
            try await waitUntil("the channel is on the promoted replica", limit: .seconds(60)) {
                client.shardSubscriber.node(of: channel) == .tcp(host: "127.0.0.1", port: promoted)
            }
            let publisher = try self.client("redis://127.0.0.1:\(promoted)")
            #expect(try await publisher.spublish("after the kill", to: channel) == 1)
            try await waitUntil("the message arrived") { received.messages == ["after the kill"] }
            #expect(received.reconnects == 2, "\(received.all)")
            await publisher.close()
            await client.close()
        }
    }
}
