@testable import RedisClient
import Testing

@Suite("cluster routing: hash slots, redirects, slot maps, key positions")
struct ClusterRoutingTests {
    @Test("hash slots match the Redis Cluster spec (CRC16/XMODEM mod 16384), hash tags included")
    func hashSlots() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)  // the spec's check value
        #expect(HashSlot.of("foo") == 12182)
        #expect(HashSlot.of("bar") == 5061)
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        #expect(HashSlot.of("foo{}{bar}") == HashSlot.of(Array("foo{}{bar}".utf8)))  // empty tag: whole key
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))                // tag runs to the first '}'
        #expect(HashSlot.of("stampede:{llm:abc}:v") == HashSlot.of("stampede:{llm:abc}:lock"))
    }

    @Test("MOVED and ASK replies are parsed; other errors are not redirects")
    func redirects() {
        #expect(ClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, to: .tcp(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirect(errorMessage: "ASK 12 ::1:7000") == .ask(slot: 12, to: .tcp(host: "::1", port: 7000)))
        #expect(ClusterRedirect(errorMessage: "MOVED 99999 h:1") == nil)
        #expect(ClusterRedirect(errorMessage: "ERR unknown command") == nil)
        #expect(ClusterRedirect(errorMessage: "MOVED 1 host:notaport") == nil)
    }

    @Test("CLUSTER SLOTS and CLUSTER SHARDS replies give the same map")
    func slotMaps() throws {
        func node(_ port: Int) -> RESPValue { .array([.bulkString(.init(string: "127.0.0.1")), .integer(Int64(port)), .bulkString(.init(string: "id\(port)"))]) }
        let slots = RESPValue.array([
            .array([.integer(0), .integer(5460), node(7000), node(7003)]),
            .array([.integer(5461), .integer(10922), node(7001)]),
            .array([.integer(10923), .integer(16383), node(7002)]),
        ])
        let queried = RedisConfiguration.Endpoint.tcp(host: "127.0.0.1", port: 7000)
        let fromSlots = try ClusterTopology.parse(slots: slots, queried: queried)
        #expect(fromSlots.coveredSlots == 16384)
        #expect(fromSlots.primary(forSlot: 0) == .tcp(host: "127.0.0.1", port: 7000))
        #expect(fromSlots.primary(forSlot: 5461) == .tcp(host: "127.0.0.1", port: 7001))
        #expect(fromSlots.primary(forSlot: 16383) == .tcp(host: "127.0.0.1", port: 7002))
        #expect(fromSlots.replicas[0] == [.tcp(host: "127.0.0.1", port: 7003)])

        func text(_ value: String) -> RESPValue { .bulkString(.init(string: value)) }
        func shardNode(_ port: Int, role: String, health: String = "online") -> RESPValue {
            .array([text("id"), text("x\(port)"), text("port"), .integer(Int64(port)), text("ip"), text("127.0.0.1"),
                    text("role"), text(role), text("health"), text(health)])
        }
        let shards = RESPValue.array([
            .array([text("slots"), .array([.integer(0), .integer(5460)]), text("nodes"), .array([shardNode(7000, role: "master"), shardNode(7003, role: "replica")])]),
            .array([text("slots"), .array([.integer(5461), .integer(10922)]), text("nodes"), .array([shardNode(7001, role: "master")])]),
            .array([text("slots"), .array([.integer(10923), .integer(16383)]), text("nodes"), .array([shardNode(7002, role: "master")])]),
        ])
        let fromShards = try ClusterTopology.parse(shards: shards, queried: queried, tls: false)
        #expect(fromShards == fromSlots)

        // A failed primary serves nothing until its replica is promoted.
        let failing = RESPValue.array([
            .array([text("slots"), .array([.integer(0), .integer(16383)]), text("nodes"), .array([shardNode(7000, role: "master", health: "fail")])]),
        ])
        #expect(try ClusterTopology.parse(shards: failing, queried: queried, tls: false).coveredSlots == 0)
        #expect(throws: RedisError.self) { try ClusterTopology.parse(slots: .integer(3), queried: queried) }
    }

    @Test("keys are found where each command keeps them; keys in different slots are cross-slot")
    func keyPositions() {
        func keys(_ command: RedisCommand) -> [String]? { CommandRouting.keys(of: command)?.map { String(decoding: $0, as: UTF8.self) } }
        #expect(keys(RedisCommand("get", "a")) == ["a"])
        #expect(keys(RedisCommand("EVALSHA", "abc", "2", "k1", "k2", "arg")) == ["k1", "k2"])
        #expect(keys(RedisCommand("EVALSHA", "abc", "0", "arg")) == [])
        #expect(keys(RedisCommand("MSET", "a", "1", "b", "2")) == ["a", "b"])
        #expect(keys(RedisCommand("BLPOP", "a", "b", "5")) == ["a", "b"])
        #expect(keys(RedisCommand("OBJECT", "ENCODING", "a")) == ["a"])
        #expect(keys(RedisCommand("FT.SEARCH", "idx", "*")) == nil)
        #expect(CommandRouting.route(RedisCommand("PING")) == .anyPrimary)
        #expect(CommandRouting.route(RedisCommand("GET", "foo")) == .slot(12182))
        #expect(CommandRouting.route(RedisCommand("MGET", "{t}a", "{t}b")) == .slot(HashSlot.of("t")))
        #expect(CommandRouting.route(RedisCommand("MGET", "foo", "bar")) == .crossSlot([5061, 12182]))
        let error = CommandRouting.crossSlotError(RedisCommand("MGET", "foo", "bar"), slots: [5061, 12182])
        #expect(error.code == .crossSlot)
        #expect(error.message.contains("hash tag"))
    }

    @Test("redis+cluster:// lists seeds; several hosts without +cluster, or a database, are refused")
    func clusterURLs() throws {
        let configuration = try RedisConfiguration(url: "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002", environment: [:])
        #expect(configuration.deployment == .cluster(seeds: [.tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 6379), .tcp(host: "::1", port: 7002)]))
        #expect(configuration.endpoint == .tcp(host: "10.0.0.1", port: 7000))
        #expect(configuration.password == "pw")
        #expect(try RedisConfiguration(url: "rediss+cluster://h:1", environment: [:]).tls != nil)
        #expect(try RedisConfiguration(url: "redis://h:1", environment: [:]).deployment == .automatic)
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://a:1,b:2", environment: [:]) }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+cluster://a:1/2", environment: [:]) }
    }
}
