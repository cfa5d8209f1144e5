import Foundation

/// One invariant's verdict.
package struct InvariantVerdict: Sendable, Codable, Hashable {
    /// `pass`, `fail`, or `skipped` (the scenario cannot exercise it; `detail` says why).
    package enum Status: String, Sendable, Codable { case pass, fail, skipped }
    /// The invariant's name.
    package var name: String
    /// The verdict.
    package var status: Status
    /// The counts behind it.
    package var detail: String
}

/// What one scenario did, with every invariant's verdict.
package struct ScenarioReport: Sendable, Codable {
    /// The scenario's name.
    package var name: String
    /// What the fault was.
    package var fault: String
    /// Whether every invariant passed (or was skipped).
    package var passed: Bool { invariants.allSatisfy { $0.status != .fail } }
    /// Requests issued by the callers.
    package var requests: Int
    /// Upstream calls, from the upstream's own record.
    package var upstreamCalls: Int
    /// Calls for a key made while an earlier successful call's answer should still have been fresh.
    package var extraCalls: Int
    /// How many extra calls the fault could justify, and why.
    package var extraAllowed: Int
    /// Why extra calls are allowed in this scenario.
    package var extraReason: String
    /// Errors by type.
    package var errors: [String: Int]
    /// The longest a request took, ms.
    package var maxLatencyMs: Double
    /// p99 request latency, ms.
    package var p99LatencyMs: Double
    /// Answers by source.
    package var sources: [String: Int]
    /// Every invariant.
    package var invariants: [InvariantVerdict]
    /// How the fleet was made up, e.g. "8 worker processes".
    package var fleet: String = ""

    /// The JSON object of the report.
    package var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "name": name, "fault": fault, "passed": passed, "requests": requests, "upstream_calls": upstreamCalls,
            "extra_calls": extraCalls, "extra_allowed": extraAllowed, "extra_reason": extraReason, "errors": errors,
            "max_latency_ms": maxLatencyMs, "p99_latency_ms": p99LatencyMs, "sources": sources, "fleet": fleet,
        ]
        for verdict in invariants { object[verdict.name] = ["status": verdict.status.rawValue, "detail": verdict.detail] }
        return object
    }
}

/// The table and JSON of a whole run.
package enum ChaosReportFormat {
    /// One row per scenario, then every invariant that did not pass.
    package static func table(_ reports: [ScenarioReport]) -> String {
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        var lines = [pad("scenario", 17) + pad("verdict", 8) + pad("requests", 10) + pad("upstream", 10) + pad("extra/allowed", 15) + pad("errors", 8) + pad("max ms", 9) + "p99 ms"]
        for report in reports {
            let errors = report.errors.values.reduce(0, +)
            lines.append(pad(report.name, 17) + pad(report.passed ? "PASS" : "FAIL", 8) + pad("\(report.requests)", 10) + pad("\(report.upstreamCalls)", 10)
                         + pad("\(report.extraCalls)/\(report.extraAllowed)", 15) + pad("\(errors)", 8) + pad(String(format: "%.0f", report.maxLatencyMs), 9)
                         + String(format: "%.0f", report.p99LatencyMs))
        }
        lines.append("")
        for report in reports {
            lines.append("\(report.name) (\(report.fault); \(report.fleet.isEmpty ? "" : report.fleet + ", ")\(report.requests) requests): extra calls allowed because \(report.extraReason)")
            for verdict in report.invariants {
                lines.append("  \(verdict.status.rawValue.uppercased().padding(toLength: 8, withPad: " ", startingAt: 0)) \(verdict.name): \(verdict.detail)")
            }
            if !report.errors.isEmpty {
                lines.append("  errors: " + report.errors.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `{"passed": ..., "scenarios": [...]}`.
    package static func json(_ reports: [ScenarioReport]) -> String {
        let object: [String: Any] = ["passed": reports.allSatisfy(\.passed), "scenarios": reports.map(\.jsonObject)]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
