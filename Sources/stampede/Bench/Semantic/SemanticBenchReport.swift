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
    /// False hits on one held-out file at the chosen threshold.
    struct HeldOut: Sendable {
        var file: String
        var negatives: Int
        var falseHits: Int
        var falseHitRate: Double
        var falseHitRateWithoutGuards: Double
        var recall: Double
    }

    var heldOut: [HeldOut] = []
    /// The first held-out file's false-hit rate (the set never used to tune anything).
    var falseHitRate: Double { heldOut.first?.falseHitRate ?? 0 }
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
        func row(_ label: String, _ exact: String, _ hybrid: String) -> String {
            "  " + label.padding(toLength: 48, withPad: " ", startingAt: 0) + exact.leftPadded(11) + hybrid.leftPadded(10)
        }
        lines.append("paraphrase workload (\(exact.requests) requests, 4 workers)".padding(toLength: 50, withPad: " ", startingAt: 0) + "exact-only".leftPadded(11) + "hybrid".leftPadded(10))
        lines.append(row("hit rate", pct(exact.hitRate), pct(hybrid.hitRate)))
        lines.append(row("exact hit rate", pct(exact.exactHitRate), pct(hybrid.exactHitRate)))
        lines.append(row("upstream calls", String(exact.upstreamCalls), String(hybrid.upstreamCalls)))
        lines.append(row("semantic answers to another question (wrong)", String(exact.wrongAnswers), String(hybrid.wrongAnswers)))
        lines.append("")
        for set in heldOut {
            lines.append("held-out \(set.file): false hits \(set.falseHits) of \(set.negatives) different-intent pairs = \(pct(set.falseHitRate)) with guards (\(pct(set.falseHitRateWithoutGuards)) cosine alone); paraphrase recall \(pct(set.recall))   goal <= 1%")
        }
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
            "false_hit_rate": falseHitRate, "false_hit_rate_without_guards": heldOut.first?.falseHitRateWithoutGuards ?? 0, "heldout_recall": heldOut.first?.recall ?? 0,
            "heldout": heldOut.map { ["file": $0.file, "negatives": $0.negatives, "false_hits": $0.falseHits, "false_hit_rate": $0.falseHitRate, "false_hit_rate_without_guards": $0.falseHitRateWithoutGuards, "recall": $0.recall] as [String: Any] },
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
