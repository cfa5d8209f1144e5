import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// Every number the CLI takes (flags, environment, config file, Redis) is validated before it
/// becomes a `Duration` or an `Int`: a bad one is one line naming the option and a non-zero exit,
/// never a trap (SIGILL), a hang, or a silently different value.
@Suite("the stampede command line: numeric input", .sharedRedis)
struct CLINumericInputTests {
    private func expectRefused(_ arguments: [String], environment: [String: String] = [:], naming option: String) async throws {
        let result = try await runStampede(arguments, environment: environment, timeout: .seconds(60))
        let shown = "\(arguments.joined(separator: " ")) \(environment): status \(result.status), stderr: \(result.stderr.prefix(300))"
        #expect(result.status != 0 && result.status < 128, "\(shown)")  // >= 128 would be a signal (SIGILL is 132)
        #expect((result.stderr + result.stdout).contains(option), "\(shown)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"), "\(shown)")
    }

    @Test("NaN, infinities, zero and out-of-range numbers in flags and the environment are refused with the option's name")
    func flagsAndEnvironment() async throws {
        let noRedis = ["REDIS_URL": "redis://127.0.0.1:1", "OPENAI_API_KEY": "sk-test"]
        try await expectRefused(["config", "check"], environment: ["STAMPEDE_FRESH_FOR": "inf"], naming: "STAMPEDE_FRESH_FOR")
        try await expectRefused(["config", "check"], environment: ["STAMPEDE_LOCK_TTL": "nan"], naming: "STAMPEDE_LOCK_TTL")
        try await expectRefused(["config", "check", "--stale-for", "1e30"], naming: "--stale-for")
        try await expectRefused(["config", "check", "--hot-threshold", "0"], naming: "--hot-threshold")
        try await expectRefused(["ask", "q", "--ttl", "inf"], environment: noRedis, naming: "--ttl")
        try await expectRefused(["ask", "q", "--ttl", "0"], environment: noRedis, naming: "--ttl")
        try await expectRefused(["ask", "q", "--ttl=-5"], environment: noRedis, naming: "--ttl")
        try await expectRefused(["ask", "q", "--max-stale", "nan"], environment: noRedis, naming: "--max-stale")
        try await expectRefused(["ask", "q", "--temperature", "nan"], environment: noRedis, naming: "--temperature")
        try await expectRefused(["ask", "q", "--temperature", "inf"], environment: noRedis, naming: "--temperature")
        try await expectRefused(["demo", "--fresh-seconds=inf"], naming: "--fresh-seconds")
        try await expectRefused(["chaos", "--duration=inf"], naming: "--duration")
        try await expectRefused(["chaos", "--duration", "0"], naming: "--duration")
        try await expectRefused(["chaos", "--workers", "0"], naming: "--workers")
        try await expectRefused(["chaos", "--callers", "0"], naming: "--callers")
        try await expectRefused(["tune", "--rate", "inf"], naming: "--rate")
        try await expectRefused(["tune", "--duration", "inf"], naming: "--duration")
        try await expectRefused(["tune", "--rate", "1000", "--duration", "1000000"], naming: "--rate x --duration")
        try await expectRefused(["cache", "get", "--key", "k", "--value", "v", "--fresh-ms", "0"], environment: noRedis, naming: "--fresh-ms")
    }

    @Test("config file: true is not 1 s, 1.7 is not truncated to 1, 1e30 does not wrap")
    func configFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "stampede-config-\(UInt32.random(in: 0..<UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(String, String)] = [
            (#"{"fresh_for": true}"#, "fresh_for"),
            (#"{"hot_threshold": 1.7}"#, "hot_threshold"),
            (#"{"hot_threshold": 1e30}"#, "hot_threshold"),
            (#"{"stale_for": 1e30}"#, "stale_for"),
            (#"{"ttl_jitter": "0.1"}"#, "ttl_jitter"),
        ]
        for (index, (json, option)) in cases.enumerated() {
            let file = directory.appending(path: "c\(index).json")
            try Data(json.utf8).write(to: file)
            try await expectRefused(["config", "check", "--config", file.path], naming: option)
        }
        let good = directory.appending(path: "good.json")
        try Data(#"{"fresh_for": 1.5, "hot_threshold": 3}"#.utf8).write(to: good)
        let accepted = try await runStampede(["config", "check", "--config", good.path])
        #expect(accepted.status == 0, "\(accepted.stdout) \(accepted.stderr)")
        #expect(accepted.stdout.contains("1.5 s") && accepted.stdout.contains("3 hits"))
    }

    @Test("stats: a counter holding nan or a 22-digit number is reported and skipped, not a crash")
    func statsWithHostileCounters() async throws {
        let url = try TestRedis.sharedURL
        let namespace = "num\(UInt32.random(in: 0..<UInt32.max))"
        let client = try makeClient(url)
        let key = RedisArgument("stampede:stats:{\(namespace)}")
        _ = try await client.send("HSET", key, "m|requests", "nan", "m|fresh_hits", "1234567890123456789012", "m|upstream_calls", "7", "m|failures", "inf")
        let result = try await runStampede(["stats", "--json"], environment: ["REDIS_URL": url, "STAMPEDE_NAMESPACE": namespace])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("m|requests = nan") && result.stderr.contains("m|fresh_hits = 1234567890123456789012") && result.stderr.contains("m|failures = inf"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["upstream_calls"] as? Int == 7)
        #expect(object["requests"] as? Int == 0)
        await client.close()
    }
}
