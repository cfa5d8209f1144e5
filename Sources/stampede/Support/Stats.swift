/// Latency samples in nanoseconds, with percentiles.
struct LatencySamples {
    private(set) var values: [Int64] = []

    mutating func append(_ nanoseconds: Int64) { values.append(nanoseconds) }
    mutating func append(contentsOf other: LatencySamples) { values.append(contentsOf: other.values) }

    var count: Int { values.count }

    /// The `p`-th percentile (0...100) in microseconds, nearest-rank.
    func percentileMicros(_ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return Double(sorted[min(max(rank, 0), sorted.count - 1)]) / 1_000
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let parts = components
        return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
    }

    var secondsDouble: Double { Double(nanoseconds) / 1e9 }
}

func formatted(_ value: Double, _ digits: Int = 1) -> String {
    let scale = pow(10, Double(digits))
    let rounded = (value * scale).rounded() / scale
    return digits == 0 ? String(Int(rounded)) : String(rounded)
}

import Foundation
