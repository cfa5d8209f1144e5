/// The one set of `Duration` conversions the package uses (Redis wants whole milliseconds, metrics
/// and reports want fractions). Conversions to NIO's `TimeAmount` use NIO's own `TimeAmount(_:)`.
extension Duration {
    /// The duration in whole nanoseconds, clamped to `Int64` (never traps, whatever the duration).
    package var nanosecondsClamped: Int64 {
        let parts = components
        let (high, overflow) = parts.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return parts.seconds < 0 ? .min : .max }
        let (total, overflowAdding) = high.addingReportingOverflow(parts.attoseconds / 1_000_000_000)
        if overflowAdding { return parts.seconds < 0 ? .min : .max }
        return total
    }

    /// Whole milliseconds, rounded up so that a positive duration is never 0 ms (PX and PSETEX reject 0).
    package var wholeMilliseconds: Int64 {
        let parts = components
        let fromAttos = (parts.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        let (high, overflow) = parts.seconds.multipliedReportingOverflow(by: 1_000)
        if overflow { return parts.seconds < 0 ? .min : .max }
        return high.addingReportingOverflow(fromAttos).overflow ? .max : high + fromAttos
    }

    /// Milliseconds as a `Double` (for metrics and reports).
    package var milliseconds: Double { self / .milliseconds(1) }

    /// Seconds as a `Double` (for rates and backoff arithmetic).
    package var secondsDouble: Double { self / .seconds(1) }
}
