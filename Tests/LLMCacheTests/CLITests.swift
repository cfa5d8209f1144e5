import Foundation
import RedisTestSupport
import SimulatedLLM
import Testing

@Suite("the stampede command line", .sharedRedis)
struct CLITests {
    @Test("ask: the first call computes, the second is a fresh hit; stats and invalidate see it")
    func askStatsInvalidate() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "sk-test")
        let namespace = "cli\(UInt32.random(in: 0..<UInt32.max))"
        let environment = ["REDIS_URL": try TestRedis.sharedURL, "OPENAI_BASE_URL": server.baseURL, "OPENAI_API_KEY": "sk-test", "STAMPEDE_NAMESPACE": namespace]
        let first = try await runStampede(["ask", "What is a cache stampede?", "--model", "sim"], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("Simulated answer to \"What is a cache stampede?\""))
        #expect(first.stderr.contains("source: computed"))
        let second = try await runStampede(["ask", "What is a cache stampede?", "--model", "sim"], environment: environment)
        #expect(second.stdout == first.stdout)
        #expect(second.stderr.contains("source: fresh_hit"))
        #expect(server.callCount == 1)
        let streamed = try await runStampede(["ask", "Stream this", "--model", "sim", "--stream"], environment: environment)
        #expect(streamed.status == 0 && streamed.stdout.hasPrefix("Simulated answer to \"Stream this\""))

        let stats = try await runStampede(["stats", "--json"], environment: environment)
        #expect(stats.status == 0, "\(stats.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(object["requests"] as? Int == 3)
        #expect(object["upstream_calls"] as? Int == 2)
        #expect(object["fresh_hits"] as? Int == 1)
        #expect((object["redis_keys"] as? Int ?? 0) >= 2)

        let invalidated = try await runStampede(["invalidate"], environment: environment)
        #expect(invalidated.status == 0 && invalidated.stdout.contains("generation 1"))
        let third = try await runStampede(["ask", "What is a cache stampede?", "--model", "sim"], environment: environment)
        #expect(third.stderr.contains("source: computed"))
        #expect(server.callCount == 3)
        await server.stop()
    }

    @Test("serve --check: host, port and proxy_config layer like every setting (swift-configuration: flag > env > file > default) with their sources; the proxy file, key variables and pass-through secret are checked")
    func serveCheck() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "serve-check-\(UInt32.random(in: 0..<UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let proxyFile = directory.appending(path: "proxy.json")
        try Data(#"{"upstreams":[{"name":"sim","base_url":"http://127.0.0.1:9","api_key_env":"SIM_KEY"}],"tenants":[],"pass_through":{"upstream":"sim","hmac_secret_env":"PT_SECRET"}}"#.utf8).write(to: proxyFile)
        let settingsFile = directory.appending(path: "settings.json")
        try Data(#"{"proxy_config":"\#(proxyFile.path)","port":7000,"fresh_for":30}"#.utf8).write(to: settingsFile)
        let ok = try await runStampede(
            ["serve", "--check", "--config", settingsFile.path, "--host", "0.0.0.0"],
            environment: ["STAMPEDE_PORT": "9000", "SIM_KEY": "k", "PT_SECRET": String(repeating: "x", count: 40)]
        )
        #expect(ok.status == 0, "\(ok.stderr)")
        let lines = ok.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("host 0.0.0.0 (flag)"))
        #expect(lines.contains("port 9000 (env STAMPEDE_PORT)"))
        #expect(lines.contains("proxy_config \(proxyFile.path) (\(settingsFile.path))"))
        #expect(lines.contains("fresh_for 30.0 s (\(settingsFile.path))"))
        #expect(lines.contains("stale_for 86400.0 s (default)"))
        #expect(ok.stdout.contains("upstream 'sim': http://127.0.0.1:9 (SIM_KEY set)"))
        #expect(ok.stdout.contains("near_cache off, commit_in_background off"))
        #expect(!ok.stdout.contains(String(repeating: "x", count: 40)), "the secret is never printed")
        let missing = try await runStampede(["serve", "--check", "--config", settingsFile.path], environment: ["STAMPEDE_PORT": "70000"])
        #expect(missing.status != 0 && missing.stderr.contains("STAMPEDE_PORT"), "\(missing.stderr)")
        let unset = try await runStampede(["serve", "--check", "--config", settingsFile.path], environment: [:])
        #expect(unset.status != 0)
        #expect(unset.stderr.contains("SIM_KEY is not set") && unset.stderr.contains("PT_SECRET"), "\(unset.stderr)")
    }

    @Test("user errors are one clear line and a non-zero exit, never a stack trace")
    func userErrors() async throws {
        let missingKey = try await runStampede(["ask", "hi"], environment: ["REDIS_URL": try TestRedis.sharedURL, "OPENAI_API_KEY": ""])
        #expect(missingKey.status != 0)
        #expect(missingKey.stderr.contains("no API key: set OPENAI_API_KEY"))
        let badURL = try await runStampede(["stats"], environment: ["REDIS_URL": "redis://host:notaport"])
        #expect(badURL.status != 0)
        #expect(badURL.stderr.contains("port 'notaport' is not a number"))
        let redisDown = try await runStampede(["stats"], environment: ["REDIS_URL": "redis://127.0.0.1:1"])
        #expect(redisDown.status != 0)
        #expect(redisDown.stderr.contains("Check that Redis is running"))
        let badPolicy = try await runStampede(["config", "check", "--compute-timeout", "60", "--lock-ttl", "30"])
        #expect(badPolicy.status != 0)
        #expect(badPolicy.stdout.contains("raise lockTTL to 66.0 seconds"))
        for result in [missingKey, badURL, redisDown] {
            #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"))
        }
    }

    @Test("demo runs to completion on its own private redis-server and its JSON report adds up")
    func demoReport() async throws {
        let result = try await runStampede([
            "demo", "--json", "--workers", "3", "--callers", "6", "--requests-per-caller", "15", "--keys", "40",
            "--latency-ms", "40", "--latency-p99-ms", "120", "--error-rate", "0", "--fresh-seconds", "1", "--think-ms", "20",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("started a private redis-server"))
        #expect(result.stderr.contains("Stopped the private redis-server"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let requests = try #require(report["requests"] as? Int)
        let upstream = try #require(report["upstream_calls"] as? Int)
        let aside = try #require(report["cache_aside_upstream_calls"] as? Int)
        let sources = try #require(report["sources"] as? [String: Int])
        #expect(requests == 3 * 6 * 15)
        #expect(report["errors"] as? Int == 0)
        #expect(sources.values.reduce(0, +) == requests)                   // every request accounted for by source
        #expect(upstream < requests)
        #expect(upstream <= aside)                                         // never worse than cache-aside
        #expect(upstream == (sources["computed"] ?? 0) + (sources["stale_hit_refreshing_here"] ?? 0) + (sources["fresh_hit_early_refresh"] ?? 0))
        #expect(report["stale_served"] as? Int == sources.filter { $0.key.hasPrefix("stale_") }.map(\.value).reduce(0, +))
        #expect(report["follower_wake_p99_ms"] is Double)
    }
}
