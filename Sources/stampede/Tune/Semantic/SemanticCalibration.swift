import LLMCache

/// The figures `stampede tune semantic` reports, computed from labelled pairs and their cosine
/// similarities: the distribution of each class and kind, precision / recall / false-hit rate per
/// threshold with and without the guards, and the threshold recommended for a target precision.
struct SemanticCalibration: Sendable {
    /// One pair with its similarity and whether the guards let it through.
    struct Scored: Sendable {
        var pair: LabelledPair
        var similarity: Double
        /// The guard that rejects the pair (`nil`: all pass).
        var rejectedBy: String?
    }

    /// Precision, recall and false-hit rate at one threshold.
    struct Point: Sendable {
        var threshold: Double
        var precision: Double
        var recall: Double
        /// Share of `same: false` pairs that would be served as hits.
        var falseHitRate: Double
        var truePositives: Int
        var falsePositives: Int
    }

    /// Similarity spread of one kind of pair.
    struct Spread: Sendable {
        var kind: String
        var same: Bool
        var count: Int
        var min: Double
        var median: Double
        var max: Double
        /// Pairs of this kind the guards reject.
        var rejectedByGuards: Int
    }

    let scored: [Scored]
    let targetPrecision: Double
    let thresholds: [Double]

    init(scored: [Scored], targetPrecision: Double) {
        self.scored = scored
        self.targetPrecision = targetPrecision
        self.thresholds = stride(from: 0.50, through: 0.9995, by: 0.0025).map { ($0 * 10_000).rounded() / 10_000 }
    }

    /// Cosine similarity of two vectors (0 when either is all zeros or the sizes differ).
    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var dot = 0.0, normA = 0.0, normB = 0.0
        for index in a.indices {
            dot += Double(a[index]) * Double(b[index])
            normA += Double(a[index]) * Double(a[index])
            normB += Double(b[index]) * Double(b[index])
        }
        guard normA > 0, normB > 0 else { return 0 }
        return dot / (normA.squareRoot() * normB.squareRoot())
    }

    /// The sweep, with (`guards: true`) or without the guards.
    func curve(guards: Bool) -> [Point] {
        thresholds.map { point(at: $0, guards: guards) }
    }

    func point(at threshold: Double, guards: Bool) -> Point {
        var truePositives = 0, falsePositives = 0
        let positives = scored.filter(\.pair.same).count
        let negatives = scored.count - positives
        for item in scored where item.similarity >= threshold && (!guards || item.rejectedBy == nil) {
            if item.pair.same { truePositives += 1 } else { falsePositives += 1 }
        }
        let predicted = truePositives + falsePositives
        return Point(
            threshold: threshold,
            precision: predicted == 0 ? 1 : Double(truePositives) / Double(predicted),
            recall: positives == 0 ? 0 : Double(truePositives) / Double(positives),
            falseHitRate: negatives == 0 ? 0 : Double(falsePositives) / Double(negatives),
            truePositives: truePositives, falsePositives: falsePositives
        )
    }

    /// The lowest threshold (most recall) whose precision meets the target, with at least one hit;
    /// `nil` when no threshold does.
    func recommended(guards: Bool) -> Point? {
        curve(guards: guards).first { $0.precision >= targetPrecision && $0.truePositives > 0 }
    }

    /// Per kind, in first-seen order.
    var spreads: [Spread] {
        var order: [String] = []
        var groups: [String: [Scored]] = [:]
        for item in scored {
            let kind = item.pair.kindLabel
            if groups[kind] == nil { order.append(kind) }
            groups[kind, default: []].append(item)
        }
        return order.map { kind in
            let items = groups[kind]!
            let values = items.map(\.similarity).sorted()
            return Spread(
                kind: kind, same: items[0].pair.same, count: items.count, min: values.first!, median: values[values.count / 2],
                max: values.last!, rejectedByGuards: items.filter { $0.rejectedBy != nil }.count
            )
        }
    }

    /// Pairs of `kind` counted as hits at `threshold` (with or without guards).
    func hits(kind: String, threshold: Double, guards: Bool) -> Int {
        scored.filter { $0.pair.kindLabel == kind && $0.similarity >= threshold && (!guards || $0.rejectedBy == nil) }.count
    }
}
