import Foundation
import RedisClient
import RedisServerProcess
import RedisTestSupport
import Testing

/// The server matrix (`make test-matrix`) reruns the suites with `STAMPEDE_REDIS_SERVER` naming
/// Redis 8 or Valkey. This proves the private servers really are that binary, and that
/// ``RedisClient/serverInfo()`` reads product and version right on each.
@Suite("server identity (server matrix)")
struct ServerIdentityTests {
    @Test("serverInfo reports the product and version of the binary the private servers run (STAMPEDE_REDIS_SERVER or redis-server)")
    func privateServerIsTheConfiguredBinary() async throws {
        let executable = RedisServerOptions.defaultExecutable
        let path = try ServerSupport.resolveExecutable(executable)
        let printed = try await runChild(path, ["--version"], timeout: .seconds(30)).stdout
        // "Redis server v=7.0.15 sha=…" or "Valkey server v=9.1.2 sha=…"
        let version = try #require(printed.split(separator: " ").first { $0.hasPrefix("v=") }?.dropFirst(2))
        let product = printed.hasPrefix("Valkey") ? "valkey" : "redis"
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            let info = try await client.serverInfo()
            await client.close()
            #expect(info.product == product, "\(printed)")
            #expect(info.version == String(version), "\(printed)")
            #expect(info.mode == "standalone")
            #expect(info.vectorSearch == false, "a plain private server has no FT.* commands")
        }
    }

    @Test("INFO server of Valkey and of Redis are told apart")
    func parsesBothProducts() {
        let valkey = RedisServerInfo(info: "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\nredis_mode:standalone\r\n", vectorSearch: false)
        #expect(valkey == RedisServerInfo(product: "valkey", version: "9.1.2", mode: "standalone", vectorSearch: false))
        let redis = RedisServerInfo(info: "# Server\r\nredis_version:8.2.3\r\nredis_mode:cluster\r\n", vectorSearch: true)
        #expect(redis == RedisServerInfo(product: "redis", version: "8.2.3", mode: "cluster", vectorSearch: true))
        #expect(redis.description == "redis 8.2.3, cluster, vector search available")
    }
}
