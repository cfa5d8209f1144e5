#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A local instant in whole nanoseconds, on the clock `ContinuousClock` reads (`CLOCK_BOOTTIME` on
/// Linux: it keeps counting while the machine is suspended, so a deadline never outlives its real
/// time). The near hit's clock: one `clock_gettime` and 64-bit arithmetic, where `ContinuousClock`
/// instants and `Duration`s cost 128-bit multiplications and divisions (about 9% of a near hit's
/// CPU in a `perf` profile of `stampede bench cache`).
///
/// Instants are only ever compared with instants of this type, never converted from or to
/// `ContinuousClock.Instant`.
struct NearInstant: Comparable, Sendable {
    /// Nanoseconds since the clock's origin.
    var nanoseconds: Int64

    init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// Now.
    static var now: NearInstant {
        var reading = timespec()
        #if os(Linux) || os(Android)
        clock_gettime(CLOCK_BOOTTIME, &reading)
        #elseif canImport(Darwin)
        clock_gettime(CLOCK_MONOTONIC_RAW, &reading)
        #else
        clock_gettime(CLOCK_MONOTONIC, &reading)
        #endif
        return NearInstant(nanoseconds: Int64(reading.tv_sec) &* 1_000_000_000 &+ Int64(reading.tv_nsec))
    }

    /// This instant `milliseconds` later (never past `Int64.max` nanoseconds).
    func adding(milliseconds: Int64) -> NearInstant {
        let (product, overflowed) = milliseconds.multipliedReportingOverflow(by: 1_000_000)
        let (sum, overflowedSum) = nanoseconds.addingReportingOverflow(product)
        if overflowed || overflowedSum { return NearInstant(nanoseconds: milliseconds < 0 ? .min : .max) }
        return NearInstant(nanoseconds: sum)
    }

    /// Nanoseconds from `earlier` to this instant (saturating).
    func nanoseconds(since earlier: NearInstant) -> Int64 {
        let (difference, overflowed) = nanoseconds.subtractingReportingOverflow(earlier.nanoseconds)
        if overflowed { return earlier.nanoseconds > nanoseconds ? .min : .max }
        return difference
    }

    static func < (lhs: NearInstant, rhs: NearInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}
