import Foundation
import LocalServices
import RedisServerProcess
import RedisTestSupport
import Testing

/// `stampede tune semantic`, `stampede bench semantic`, `stampede demo --semantic` and
/// `stampede semantic index` at small sizes, against the real local model and Redis 8 + RediSearch:
/// the structure of the output and its internal consistency, never timings. (Named so that
/// `make test` runs it with the other tool suites, after the unit and integration tests.)
@Suite("semantic tools: tune, bench, demo, index", .serialized)
struct SemanticBenchToolsTests {
    @Test("tune semantic on the 159 starter pairs: 12 kinds, a curve, a guarded threshold of precision >= 0.99, and a chart")
    func tuneSemantic() async throws {
        let chart = FileManager.default.temporaryDirectory.appendingPathComponent("tune-semantic-\(UInt32.random(in: 0..<UInt32.max)).svg")
        defer { try? FileManager.default.removeItem(at: chart) }
        let result = try await runStampede(["tune", "semantic", "--json", "--chart", chart.path], timeout: .seconds(300))
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["pairs"] as? Int == 159)
        let kinds = try #require(report["kinds"] as? [[String: Any]])
        #expect(kinds.count == 12)
        #expect(kinds.compactMap { $0["pairs"] as? Int }.reduce(0, +) == 159)
        let curve = try #require(report["curve"] as? [[String: Any]])
        #expect(curve.count == 200)
        let recommended = try #require(report["recommended"] as? [String: Any])
        let guarded = try #require(recommended["guarded"] as? [String: Any])
        #expect(try #require(guarded["precision"] as? Double) >= 0.99)
        // Cosine alone never reaches 0.99 precision on this set (reversals score up to 0.998).
        #expect(recommended["cosine"] is NSNull)
        #expect(try String(contentsOf: chart, encoding: .utf8).contains("<svg"))
    }

    @Test("tune semantic names the file and line of a malformed pair")
    func tuneSemanticRejectsMalformedPairs() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pairs-\(UInt32.random(in: 0..<UInt32.max)).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("{\"a\": \"x\", \"b\": \"y\", \"same\": true}\n{\"a\": \"x\", \"same\": false}\n".utf8).write(to: file)
        let result = try await runStampede(["tune", "semantic", "--pairs", file.path], timeout: .seconds(60))
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(file.path):2:"))
    }

    @Test("bench semantic --json at small sizes: every key, one upstream call for the semantic herd, then index info and drop")
    func benchSemanticAndIndexCommands() async throws {
        let server = try await VectorRedis.start()
        do {
            let result = try await runStampede(
                ["bench", "semantic", "--redis-url", server.url, "--sizes", "1000", "--queries", "30", "--requests", "60", "--json"], timeout: .seconds(600)
            )
            #expect(result.status == 0, "\(result.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            for key in ["exact_hit_rate", "hybrid_hit_rate", "upstream_calls", "false_hit_rate", "lookup_p50_ms", "lookup_p99_ms", "recall_at_1", "embed_p50_ms", "semantic_herd_upstream_calls"] {
                #expect(report[key] != nil, "missing \(key)")
            }
            #expect(report["semantic_herd_upstream_calls"] as? Int == 1)
            #expect(report["semantic_herd_callers"] as? Int == 32)
            let exactCalls = try #require(report["upstream_calls_exact_only"] as? Int)
            let hybridCalls = try #require(report["upstream_calls_hybrid"] as? Int)
            #expect(hybridCalls <= exactCalls)
            #expect(try #require(report["hybrid_hit_rate"] as? Double) >= (try #require(report["exact_hit_rate"] as? Double)))
            let recall = try #require(report["recall_at_1"] as? Double)
            #expect((0...1).contains(recall))

            // The hybrid workload left its index: info lists it, drop removes it.
            let info = try await runStampede(["semantic", "index", "info", "--redis-url", server.url, "--prefix", "stampede-bench-sem", "--json"])
            #expect(info.status == 0, "\(info.stderr)")
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [[String: Any]])
            #expect(listed.count == 1)
            #expect(listed.first?["name"] as? String == "stampede-bench-sem-v1-384")
            #expect(listed.first?["dimensions"] as? Int == 384)
            #expect(try #require(listed.first?["documents"] as? Int) > 0)
            let drop = try await runStampede(["semantic", "index", "drop", "stampede-bench-sem-v1-384", "--redis-url", server.url])
            #expect(drop.status == 0, "\(drop.stderr)")
            let after = try await runStampede(["semantic", "index", "info", "--redis-url", server.url, "--prefix", "stampede-bench-sem", "--json"])
            #expect(after.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
            let refused = try await runStampede(["semantic", "index", "drop", "not-ours", "--redis-url", server.url])
            #expect(refused.status != 0 && refused.stderr.contains("not a StampedeCache semantic index"))
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test("demo --semantic --json: fewer upstream calls than exact-only on the same requests; sources add up")
    func demoSemantic() async throws {
        let result = try await runStampede(["demo", "--semantic", "--semantic-requests", "80", "--latency-ms", "50", "--latency-p99-ms", "50", "--json"], timeout: .seconds(600))
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let exact = try #require(report["upstream_calls_exact_only"] as? Int)
        let hybrid = try #require(report["upstream_calls_hybrid"] as? Int)
        #expect(hybrid < exact)
        let sources = try #require(report["sources_hybrid"] as? [String: Int])
        #expect(sources.values.reduce(0, +) == 80)
        #expect((sources["semantic_hit"] ?? 0) + (sources["semantic_wait"] ?? 0) > 0)
    }
}
