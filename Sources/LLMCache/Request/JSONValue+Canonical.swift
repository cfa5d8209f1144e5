extension JSONValue {
    /// The canonical serialization: the exact bytes a cache key hashes.
    ///
    /// - Object keys are sorted by their UTF-8 bytes; no insignificant whitespace anywhere.
    /// - Strings escape only what JSON requires: `\"`, `\\`, `\b \f \n \r \t`, and the other
    ///   control characters below U+0020 as `\u00xx` (lowercase hex). Everything else — `/`,
    ///   DEL, non-ASCII — is written as raw UTF-8. No Unicode normalisation is applied.
    /// - Integers (``int(_:)``) print in decimal. A ``double(_:)`` that is integral and smaller
    ///   than 2^53 in magnitude prints as that integer (`1.0` → `1`, `-0.0` → `0`); any other
    ///   finite double prints in Swift's shortest round-trip form with a lowercase exponent
    ///   without `+` or leading zeros (`1e-07` → `1e-7`, `1.5e+20` → `1.5e20`,
    ///   `2^53` → `9007199254740992`, `2^60` → `1.152921504606847e18`).
    /// - A non-finite double (NaN, ±infinity) cannot be represented and prints as `null`.
    public func canonicalJSON() -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        writeCanonical(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the canonical serialization to `bytes`.
    package func writeCanonical(into bytes: inout [UInt8]) {
        switch self {
        case .null:
            bytes.append(contentsOf: "null".utf8)
        case .bool(let value):
            bytes.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value):
            bytes.append(contentsOf: String(value).utf8)
        case .double(let value):
            Self.writeCanonicalNumber(value, into: &bytes)
        case .string(let value):
            Self.writeCanonicalString(value, into: &bytes)
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                value.writeCanonical(into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (index, key) in Self.sortedKeys(object).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                Self.writeCanonicalString(key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                object[key]?.writeCanonical(into: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// The canonical text of a double: see ``canonicalJSON()``.
    static func canonicalNumber(_ value: Double) -> String {
        var bytes: [UInt8] = []
        writeCanonicalNumber(value, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func writeCanonicalNumber(_ value: Double, into bytes: inout [UInt8]) {
        guard value.isFinite else {
            bytes.append(contentsOf: "null".utf8)
            return
        }
        if let integer = exactInteger(value) {
            bytes.append(contentsOf: String(integer).utf8)
            return
        }
        // Swift's description is the shortest text that round-trips, e.g. "0.1", "1e-07",
        // "1.5e+20", "9007199254740992.0"; only the spelling is normalised here.
        let text = value.description
        var mantissa = Substring(text)
        var exponent: Substring?
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = text[text.index(after: e)...]
        }
        if mantissa.hasSuffix(".0") { mantissa = mantissa.dropLast(2) }
        bytes.append(contentsOf: mantissa.utf8)
        guard var digits = exponent else { return }
        var negative = false
        if digits.first == "+" {
            digits = digits.dropFirst()
        } else if digits.first == "-" {
            negative = true
            digits = digits.dropFirst()
        }
        while digits.count > 1, digits.first == "0" { digits = digits.dropFirst() }
        bytes.append(UInt8(ascii: "e"))
        if negative { bytes.append(UInt8(ascii: "-")) }
        bytes.append(contentsOf: digits.utf8)
    }

    package static func writeCanonicalString(_ value: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            // Runs of bytes that need no escape are appended whole.
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
                case 0x08: bytes.append(contentsOf: #"\b"#.utf8)
                case 0x0C: bytes.append(contentsOf: #"\f"#.utf8)
                case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
                case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
                case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
                default:
                    bytes.append(contentsOf: #"\u00"#.utf8)
                    bytes.append(hexDigit(byte >> 4))
                    bytes.append(hexDigit(byte & 0x0F))
                }
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `0`–`9`, `a`–`f` for a nibble.
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
