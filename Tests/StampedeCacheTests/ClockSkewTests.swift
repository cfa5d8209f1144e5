import Foundation
import RedisClient
import RedisTestSupport
import StampedeCache
import Testing

/// Runs `stampede cache get` in its own process, optionally under libfaketime with a shifted clock.
private func stampedeGet(
    url: String, namespace: String, key: String, value: String, clockOffset: String?, extra: [String] = []
) async throws -> [String: Any] {
    let binary = try stampedeBinary()
    let arguments = ["cache", "get", "--redis-url", url, "--namespace", namespace, "--key", key, "--value", value,
                     "--fresh-ms", "1500", "--stale-ms", "60000", "--json"] + extra
    let run = if let clockOffset {
        try await runChild("/usr/bin/faketime", ["-f", clockOffset, binary] + arguments)
    } else {
        try await runChild(binary, arguments)
    }
    guard run.status == 0, let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any] else {
        throw CacheError(code: .invalidKey, key: key, message: "stampede cache get failed (\(run.status)): \(run.stdout) \(run.stderr.prefix(500))")
    }
    return object
}

@Suite("decisions use the Redis server's clock", .sharedRedis)
struct ClockSkewTests {
    @Test("workers whose clocks are 2 hours ahead or behind make the same fresh/stale decisions")
    func skewedWorkersAgree() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/faketime"), "install faketime (scripts/ensure-deps.sh does)")
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        // An in-process worker with the true clock commits a value fresh for 20 s: long enough for
        // three worker processes to start and read it on a loaded machine.
        let worker = try await Worker.start(url, namespace: namespace, policy: testPolicy(freshFor: .seconds(20)))
        let committed = try await worker.cache.string(for: "k") { "v1" }
        #expect(committed.source == .computed)
        let entry = try await worker.cache.entryKeys(for: "k")
        let blob = try #require(try await worker.client.get(entry.value))
        let stored = try #require(StoredEntry(blob: blob, now: 0))
        // While it is fresh by the server's clock: every worker sees a fresh hit, whatever its own clock says.
        for offset in [nil, "+2h", "-2h"] {
            let answer = try await stampedeGet(url: url, namespace: namespace, key: "k", value: "other", clockOffset: offset)
            #expect(answer["source"] as? String == "fresh_hit", "offset \(offset ?? "none"): \(answer)")
            #expect(answer["value"] as? String == "v1")
            let age = answer["age_ms"] as? Int ?? -1
            #expect(age >= 0 && age < 20_000, "age is measured on the server clock: \(age)")
        }
        // After freshness ends by the server's clock (waited for on that clock, not slept): every
        // worker sees it stale (one of them refreshes).
        try await waitUntilServerClockPasses(stored.freshUntil, worker.client, "the value is stale by the server's clock")
        var sources: [String] = []
        for offset in ["-2h", "+2h", nil] {
            let answer = try await stampedeGet(url: url, namespace: namespace, key: "k", value: "v2", clockOffset: offset)
            sources.append(answer["source"] as? String ?? "?")
        }
        #expect(sources.allSatisfy { $0.hasPrefix("stale_hit") || $0 == "fresh_hit" }, "\(sources)")
        #expect(sources.first == "stale_hit_refreshing_here")  // the first (clock 2 h behind) wins the refresh lease
        await worker.stop()
    }

    @Test("repeated reads under clocks 2 hours ahead or behind: hits that skip TIME and near-cache hits stay server-clock decisions")
    func repeatedReadsUnderSkew() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let worker = try await Worker.start(url, namespace: namespace, policy: testPolicy(freshFor: .seconds(60)))
        _ = try await worker.cache.string(for: "k") { "v1" }
        // A wall-clock decision would call the entry stale 2 hours ahead; the server's clock
        // (sampled by the first read, then bounded by the process's monotonic clock) says fresh.
        for offset in [nil, "+2h", "-2h"] {
            for extra in [["--reads", "3"], ["--reads", "3", "--near-cache"]] {
                let repeated = try await stampedeGet(url: url, namespace: namespace, key: "k", value: "other", clockOffset: offset, extra: extra)
                let sources = repeated["sources"] as? [String] ?? []
                let expected = extra.contains("--near-cache") ? ["fresh_hit", "fresh_hit_near", "fresh_hit_near"] : ["fresh_hit", "fresh_hit", "fresh_hit"]
                #expect(sources == expected, "offset \(offset ?? "none") \(extra): \(repeated)")
                #expect(repeated["value"] as? String == "v1")
                let age = repeated["age_ms"] as? Int ?? -1
                #expect(age >= 0 && age < 60_000, "offset \(offset ?? "none") \(extra): age \(age)")
            }
        }
        await worker.stop()
    }
}
