import Foundation
import LocalServices
import RedisTestSupport
import SimulatedLLM
import Testing

/// `stampede config check --ping`, `ask` and `stats` unchanged against a `rediss://` URL, one node
/// of a Redis Cluster, and a `redis+sentinel://` URL (real servers the tests start).
@Suite("the command line on TLS, Cluster and Sentinel", .serialized)
struct CLIDeploymentTests {
    private func exercise(url: String, extraEnvironment: [String: String] = [:], expect lines: [String]) async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "sk-test")
        let namespace = "deploy\(UInt32.random(in: 0..<UInt32.max))"
        var environment = ["REDIS_URL": url, "OPENAI_BASE_URL": server.baseURL, "OPENAI_API_KEY": "sk-test", "STAMPEDE_NAMESPACE": namespace]
        for (name, value) in extraEnvironment { environment[name] = value }
        let check = try await runStampede(["config", "check", "--ping"], environment: environment)
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        for line in lines { #expect(check.stdout.contains(line), "missing '\(line)' in: \(check.stdout)") }
        #expect(check.stdout.contains("every command the cache needs is allowed"))
        let first = try await runStampede(["ask", "Which Redis is this?", "--model", "sim"], environment: environment)
        #expect(first.status == 0 && first.stderr.contains("source: computed"), "\(first.stderr)")
        let second = try await runStampede(["ask", "Which Redis is this?", "--model", "sim"], environment: environment)
        #expect(second.stderr.contains("source: fresh_hit"), "\(second.stderr)")
        #expect(server.callCount == 1)
        let stats = try await runStampede(["stats", "--json"], environment: environment)
        #expect(stats.status == 0, "\(stats.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(object["requests"] as? Int == 2)
        #expect(object["upstream_calls"] as? Int == 1)
        await server.stop()
    }

    @Test("rediss:// with REDIS_TLS_CA_FILE")
    func overTLS() async throws {
        let certificates = try await TestCertificates.shared.value
        try await withTLSRedis(certificates) { redis in
            try await exercise(url: redis.url(), extraEnvironment: ["REDIS_TLS_CA_FILE": certificates.caFile],
                               expect: ["mode standalone", "TLS on, certificate verification full"])
        }
    }

    @Test("one node of a 3-primary cluster")
    func onACluster() async throws {
        try await withTestCluster(replicasPerPrimary: 0) { cluster in
            try await exercise(url: cluster.url, expect: ["mode cluster", "Redis Cluster, 3 primaries", "vector search (semantic caching) not used"])
        }
    }

    @Test("redis+sentinel://")
    func throughSentinel() async throws {
        try await withTestSentinel { sentinel in
            try await exercise(url: sentinel.url, expect: ["mode standalone", "through Sentinel (3 sentinels), primary 'mymaster'"])
        }
    }
}
