import Foundation
import LLMCache

/// What `stampede bench semantic` prints (table) or emits (`--json`).
struct SemanticBenchReport: Sendable {
    /// One mode of the paraphrase workload.
    struct Mode: Sendable {
        var requests = 0
        var exactHits = 0
        var semanticHits = 0
        var upstreamCalls = 0
        /// Semantic answers whose matched prompt belongs to another cluster (a wrong answer served).
        var wrongAnswers = 0
        /// Answers by source label (`computed`, `fresh_hit`, `semantic_hit`, `semantic_wait`, ...).
        var sources: [String: Int] = [:]
        /// The workers' accounting added up (embeddings, guard rejections, tokens saved, ...).
        var accounting = ModelAccounting()

        var exactHitRate: Double { requests == 0 ? 0 : Double(exactHits) / Double(requests) }
        var hitRate: Double { requests == 0 ? 0 : Double(exactHits + semanticHits) / Double(requests) }
    }

    var embeddings: String
    var threshold = 0.0
    var falseHitRate = 0.0
    var falseHitRateWithoutGuards = 0.0
    var heldOutRecall = 0.0
    var heldOutNegatives = 0
    var embedP50Milliseconds = 0.0
    var exact = Mode()
    var hybrid = Mode()
    var herdUpstreamCalls = 0
    var herdCallers = 0
    var lookups: [VectorLookupBench.Result] = []
    var efRuntime = 0

    init(embeddings: String) { self.embeddings = embeddings }

    private func pct(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }

    var table: String {
        var lines: [String] = []
        lines.append("bench semantic: embeddings \(embeddings); threshold \(String(format: "%.4f", threshold)) (guards on)")
        lines.append("")
        lines.append("paraphrase workload (\(exact.requests) requests, 4 workers)   exact-only   hybrid")
        lines.append(String(format: "  hit rate                                           %9@  %7@", pct(exact.hitRate) as NSString, pct(hybrid.hitRate) as NSString))
        lines.append(String(format: "  exact hit rate                                     %9@  %7@", pct(exact.exactHitRate) as NSString, pct(hybrid.exactHitRate) as NSString))
        lines.append(String(format: "  upstream calls                                     %9d  %7d", exact.upstreamCalls, hybrid.upstreamCalls))
        lines.append(String(format: "  semantic answers from another question (wrong)     %9d  %7d", exact.wrongAnswers, hybrid.wrongAnswers))
        lines.append("")
        lines.append("held-out pairs: false-hit rate \(pct(falseHitRate)) with guards (\(pct(falseHitRateWithoutGuards)) cosine alone) of \(heldOutNegatives) different-intent pairs; paraphrase recall \(pct(heldOutRecall))   goal <= 1%")
        lines.append("semantic herd: \(herdCallers) simultaneous paraphrases of one new question over 4 workers -> \(herdUpstreamCalls) upstream call(s)   goal <= 2")
        lines.append(String(format: "embedding one uncached text: p50 %.1f ms", embedP50Milliseconds))
        lines.append("")
        lines.append("KNN lookup (k 1, EF_RUNTIME \(efRuntime), excluding embedding)   p50 ms   p99 ms   recall@1   insert s")
        for lookup in lookups {
            lines.append(String(format: "  %7d entries %38.3f %8.3f %10.3f %10.1f", lookup.size, lookup.p50Milliseconds, lookup.p99Milliseconds, lookup.recallAt1, lookup.insertSeconds))
        }
        lines.append("  goal: p50 <= 1 ms at 100k entries with recall@1 >= 0.95")
        return lines.joined(separator: "\n")
    }

    var json: String {
        var object: [String: Any] = [
            "embeddings": embeddings, "threshold": threshold,
            "exact_hit_rate": exact.hitRate, "hybrid_hit_rate": hybrid.hitRate, "hybrid_exact_hit_rate": hybrid.exactHitRate,
            "upstream_calls": hybrid.upstreamCalls, "upstream_calls_exact_only": exact.upstreamCalls, "upstream_calls_hybrid": hybrid.upstreamCalls,
            "workload_requests": exact.requests, "workload_wrong_answers": hybrid.wrongAnswers,
            "false_hit_rate": falseHitRate, "false_hit_rate_without_guards": falseHitRateWithoutGuards, "heldout_recall": heldOutRecall,
            "embed_p50_ms": embedP50Milliseconds,
            "semantic_herd_upstream_calls": herdUpstreamCalls, "semantic_herd_callers": herdCallers,
            "ef_runtime": efRuntime,
        ]
        for lookup in lookups {
            let label = lookup.size % 1000 == 0 ? "\(lookup.size / 1000)k" : "\(lookup.size)"
            object["lookup_p50_ms_\(label)"] = lookup.p50Milliseconds
            object["lookup_p99_ms_\(label)"] = lookup.p99Milliseconds
            object["recall_at_1_\(label)"] = lookup.recallAt1
        }
        if let largest = lookups.max(by: { $0.size < $1.size }) {
            object["lookup_p50_ms"] = largest.p50Milliseconds
            object["lookup_p99_ms"] = largest.p99Milliseconds
            object["recall_at_1"] = largest.recallAt1
            object["lookup_entries"] = largest.size
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
