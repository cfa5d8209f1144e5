import LocalServices
@testable import RedisClient
import RedisServerProcess
import RedisTestSupport
import Testing

/// The client through real sentinels (a primary, a replica and three sentinels that the test
/// starts): discovery, failover, read-only replicas.
@Suite("Redis Sentinel against real sentinels", .serialized)
struct SentinelIntegrationTests {
    private func client(_ url: String) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url, environment: [:])
        configuration.clientName = "sentinel-test"
        configuration.commandTimeout = .seconds(2)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
        return try RedisClient(configuration: configuration, logger: TestRedis.logger)
    }

    @Test("redis+sentinel:// URLs give the sentinels, the master name, the database and the sentinels' password")
    func urls() throws {
        let configuration = try RedisConfiguration(url: "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26380/cache-main/2?sentinel_password=sp", environment: [:])
        #expect(configuration.deployment == .sentinel(sentinels: [.tcp(host: "10.0.0.1", port: 26379), .tcp(host: "10.0.0.2", port: 26380)], masterName: "cache-main", password: "sp"))
        #expect(configuration.password == "pw")
        #expect(configuration.database == 2)
        #expect(RedisConfiguration.redacted("redis+sentinel://h:1/m?sentinel_password=sp").hasSuffix("sentinel_password=***"))
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://h:26379", environment: [:]) }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://h:1?sentinel_password=x", environment: [:]) }
    }

    @Test("the client asks the sentinels for the primary and writes there; an unknown master name is a clear error")
    func discovers() async throws {
        try await withTestSentinel { sentinel in
            let client = try client(sentinel.url)
            try await client.set("sentinel:k", to: "v")
            let primary = try await sentinel.primaryPort()
            let direct = try await LocalCluster.redisCLI(["-p", "\(primary)", "GET", "sentinel:k"])
            #expect(direct.output.trimmingCharacters(in: .whitespacesAndNewlines) == "v")
            await client.close()

            let unknown = try self.client(sentinel.url.replacingOccurrences(of: "/mymaster", with: "/nosuch"))
            let error = await expectRedisError { try await unknown.ping() }
            #expect(error?.code == .connection)
            #expect(error?.message.contains("does not know a master named 'nosuch'") == true, "\(String(describing: error))")
            await unknown.close()
        }
    }

    @Test("SENTINEL FAILOVER mid-use: after errors for at most the failover, writes land on the new primary")
    func followsFailover() async throws {
        try await withTestSentinel { sentinel in
            let client = try client(sentinel.url)
            try await client.set("sentinel:before", to: "1")
            let old = try await sentinel.primaryPort()
            let new = try await sentinel.failover()
            #expect(new != old)
            var attempts = 0
            while true {
                attempts += 1
                do {
                    try await client.set("sentinel:after", to: "2")
                    break
                } catch let error as RedisError {
                    #expect([.connection, .timeout, .readOnly].contains(error.code), "\(error)")
                    if attempts > 400 { Issue.record("never recovered: \(error)"); break }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let onNew = try await LocalCluster.redisCLI(["-p", "\(new)", "GET", "sentinel:after"])
            #expect(onNew.output.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
            #expect(try await client.get("sentinel:before").map { String(buffer: $0) } == "1")
            await client.close()
        }
    }

    @Test("a write to a read-only replica is a .readOnly error with Redis's READONLY text")
    func readOnlyReplica() async throws {
        try await withTestSentinel { sentinel in
            let replicaPort = try #require(sentinel.dataNodes[1].port)
            let client = try client("redis://127.0.0.1:\(replicaPort)")
            let error = await expectRedisError { try await client.set("k", to: "v") }
            #expect(error?.code == .readOnly)
            #expect(error?.message.hasPrefix("READONLY") == true, "\(String(describing: error))")
            #expect(error?.description.contains("redis+sentinel://") == true)
            await client.close()
        }
    }
}
