import ArgumentParser
import Foundation

/// Every number the CLI takes from a flag, the environment or a config file goes through here
/// before it becomes a `Duration` or an `Int`: not a number, NaN, ±infinity, a value out of the
/// option's range, a fraction where a whole number is needed, or a JSON `true` are refused with one
/// line naming the option. (`Duration.seconds(.infinity)` and `Int(1e30)` trap; nothing may reach them.)
enum NumericInput {
    /// The longest duration any option takes: 10 years, the cache policy's own limit.
    static let maximumSeconds: Double = 10 * 365 * 86_400

    /// A finite number within `range`.
    static func number(_ text: String, _ name: String, in range: ClosedRange<Double>) throws -> Double {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("\(name) must be a number, got '\(text.prefix(40))'")
        }
        return try number(value, name, in: range)
    }

    /// A finite number within `range`.
    static func number(_ value: Double, _ name: String, in range: ClosedRange<Double>) throws -> Double {
        guard value.isFinite else { throw ValidationError("\(name) must be a finite number, got \(value)") }
        guard range.contains(value) else { throw ValidationError("\(name) must be between \(shown(range.lowerBound)) and \(shown(range.upperBound)), got \(shown(value))") }
        return value
    }

    /// A whole number within `range`.
    static func integer(_ text: String, _ name: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("\(name) must be a whole number, got '\(text.prefix(40))'")
        }
        return try integer(value, name, in: range)
    }

    /// A whole number within `range`.
    static func integer(_ value: Int, _ name: String, in range: ClosedRange<Int>) throws -> Int {
        guard range.contains(value) else { throw ValidationError("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)") }
        return value
    }

    /// Seconds, finite, within `range` (default: 0 to 10 years).
    static func seconds(_ value: Double, _ name: String, in range: ClosedRange<Double> = 0...maximumSeconds) throws -> Duration {
        .milliseconds(Int64((try number(value, name, in: range) * 1000).rounded()))
    }

    /// A number from a JSON config file: a real number (not `true`/`false`), finite.
    static func jsonNumber(_ raw: Any, _ name: String) throws -> Double {
        // JSON true/false arrive as boolean NSNumbers, whose type code is "c" (char).
        guard let number = raw as? NSNumber, String(cString: number.objCType) != "c" else {
            throw ValidationError("\(name) must be a number, got \(String(describing: raw).prefix(40))")
        }
        return number.doubleValue
    }

    /// A whole number from a JSON config file: no fraction (1.7 is refused, not truncated), no overflow.
    static func jsonInteger(_ raw: Any, _ name: String) throws -> Int {
        let value = try jsonNumber(raw, name)
        guard value.isFinite, value.rounded(.towardZero) == value, abs(value) <= 9_007_199_254_740_992 else {
            throw ValidationError("\(name) must be a whole number, got \(shown(value))")
        }
        return Int(value)
    }

    private static func shown(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
