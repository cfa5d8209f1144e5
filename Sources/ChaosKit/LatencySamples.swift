import Histogram

/// Latency samples in nanoseconds, the one percentile implementation of the tools (benchmarks,
/// the demo, the chaos judge), kept in an HDR histogram (3 significant digits, 1 ns – 1 h):
/// constant memory however many samples, and histograms from several workers merge exactly.
package struct LatencySamples: Sendable {
    package init() {}

    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)

    /// Records one latency; values outside 1 ns – 1 h are clamped into it.
    package mutating func append(_ nanoseconds: Int64) {
        _ = histogram.record(UInt64(min(max(nanoseconds, 1), 3_600_000_000_000)))
    }

    package mutating func append(contentsOf other: LatencySamples) { histogram.add(other.histogram) }

    package var count: Int { Int(clamping: histogram.totalCount) }

    /// The `p`-th percentile (0...100) in microseconds (within 0.1% of the exact sample).
    package func percentileMicros(_ p: Double) -> Double {
        guard histogram.totalCount > 0 else { return 0 }
        return Double(histogram.valueAtPercentile(p)) / 1_000
    }
}

