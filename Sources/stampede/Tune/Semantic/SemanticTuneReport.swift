import Foundation

/// What `stampede tune semantic` prints: a table per kind, the sweep, the recommendation, JSON and a chart.
struct SemanticTuneReport {
    let calibration: SemanticCalibration
    let source: String
    let pairsFile: String

    static let shownThresholds = [0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99]

    private func f(_ value: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", value) }

    var table: String {
        let scored = calibration.scored
        let same = scored.filter(\.pair.same).count
        let guarded = calibration.recommended(guards: true)
        let plain = calibration.recommended(guards: false)
        let reference = guarded?.threshold ?? 0.92
        var lines: [String] = []
        lines.append("tune semantic: \(scored.count) pairs (\(same) same, \(scored.count - same) different) from \(pairsFile); embeddings: \(source)")
        lines.append("")
        lines.append("similarity (cosine) per kind; hits = pairs served as the same question at \(f(reference, 4)) (the recommended threshold with guards)")
        lines.append("kind                class  pairs    min  median     max  rejected by guards  hits cosine  hits guards")
        for spread in calibration.spreads {
            let hitsPlain = calibration.hits(kind: spread.kind, threshold: reference, guards: false)
            let hitsGuarded = calibration.hits(kind: spread.kind, threshold: reference, guards: true)
            lines.append(
                spread.kind.padding(toLength: 20, withPad: " ", startingAt: 0)
                + (spread.same ? "same " : "diff ").padding(toLength: 6, withPad: " ", startingAt: 0)
                + String(format: "%6d %6.3f %7.3f %7.3f %19d %12d %12d", spread.count, spread.min, spread.median, spread.max, spread.rejectedByGuards, hitsPlain, hitsGuarded)
            )
        }
        lines.append("")
        lines.append("threshold   cosine alone: precision  recall  false hits   with guards: precision  recall  false hits")
        var rows = Self.shownThresholds
        for point in [plain, guarded].compactMap({ $0 }) where !rows.contains(point.threshold) { rows.append(point.threshold) }
        for threshold in rows.sorted() {
            let a = calibration.point(at: threshold, guards: false)
            let b = calibration.point(at: threshold, guards: true)
            lines.append(String(format: "%9.4f %23.3f %7.3f %11.3f %23.3f %7.3f %11.3f", threshold, a.precision, a.recall, a.falseHitRate, b.precision, b.recall, b.falseHitRate))
        }
        lines.append("")
        lines.append("recommended for precision >= \(f(calibration.targetPrecision, 2)):")
        lines.append("  cosine alone: " + (plain.map { "threshold \(f($0.threshold, 4)) (recall \(f($0.recall)), false hits \(f($0.falseHitRate)))" } ?? "none: no threshold reaches that precision with cosine similarity alone"))
        lines.append("  with guards:  " + (guarded.map { "threshold \(f($0.threshold, 4)) (recall \(f($0.recall)), false hits \(f($0.falseHitRate)))" } ?? "none: no threshold reaches that precision; label more pairs or raise the threshold by hand"))
        if let guarded {
            lines.append("  use: SemanticConfiguration(embeddings: ..., dimensions: ..., threshold: \(f(guarded.threshold, 4)))")
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        func point(_ point: SemanticCalibration.Point?) -> Any {
            guard let point else { return NSNull() }
            return ["threshold": point.threshold, "precision": point.precision, "recall": point.recall, "false_hit_rate": point.falseHitRate]
        }
        let guarded = calibration.recommended(guards: true)
        let reference = guarded?.threshold ?? 0.92
        let kinds: [[String: Any]] = calibration.spreads.map { spread in
            [
                "kind": spread.kind, "same": spread.same, "pairs": spread.count, "min": spread.min, "median": spread.median, "max": spread.max,
                "rejected_by_guards": spread.rejectedByGuards,
                "hits_cosine_at_recommended": calibration.hits(kind: spread.kind, threshold: reference, guards: false),
                "hits_guarded_at_recommended": calibration.hits(kind: spread.kind, threshold: reference, guards: true),
            ]
        }
        let curve: [[String: Any]] = calibration.thresholds.map { threshold in
            let a = calibration.point(at: threshold, guards: false)
            let b = calibration.point(at: threshold, guards: true)
            return [
                "threshold": threshold, "precision": a.precision, "recall": a.recall, "false_hit_rate": a.falseHitRate,
                "precision_guarded": b.precision, "recall_guarded": b.recall, "false_hit_rate_guarded": b.falseHitRate,
            ]
        }
        let object: [String: Any] = [
            "pairs": calibration.scored.count, "embeddings": source, "target_precision": calibration.targetPrecision,
            "recommended": ["cosine": point(calibration.recommended(guards: false)), "guarded": point(guarded)],
            "kinds": kinds, "curve": curve,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    var svg: String {
        let plain = calibration.curve(guards: false)
        let guarded = calibration.curve(guards: true)
        var markers: [(x: Double, label: String)] = []
        if let point = calibration.recommended(guards: true) { markers.append((point.threshold, "guards: \(f(point.threshold, 4))")) }
        if let point = calibration.recommended(guards: false) { markers.append((point.threshold, "cosine: \(f(point.threshold, 4))")) }
        return LineChart(
            title: "Semantic threshold: precision and recall on \(calibration.scored.count) labelled pairs",
            caption: "\(source); recommended = lowest threshold with precision >= \(f(calibration.targetPrecision, 2))",
            xLabel: "cosine similarity threshold",
            xRange: 0.5...1.0,
            series: [
                .init(name: "precision (cosine)", points: plain.map { ($0.threshold, $0.precision) }, dashed: true),
                .init(name: "recall (cosine)", points: plain.map { ($0.threshold, $0.recall) }, dashed: true),
                .init(name: "precision (guards)", points: guarded.map { ($0.threshold, $0.precision) }),
                .init(name: "recall (guards)", points: guarded.map { ($0.threshold, $0.recall) }),
                .init(name: "false hits (guards)", points: guarded.map { ($0.threshold, $0.falseHitRate) }),
            ],
            markers: markers
        ).svg
    }
}
