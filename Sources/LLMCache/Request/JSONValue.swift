/// A JSON document as a Swift value, with a canonical byte-exact serialization for cache keys.
///
/// ## Numbers
/// JSON has one number type; this enum keeps two so integers survive exactly:
/// ``int(_:)`` for integers that fit `Int64`, ``double(_:)`` for everything else.
/// Equality, hashing and ``canonicalJSON()`` all see the *normalised* number, so
/// `.int(1) == .double(1.0)` and `.double(-0.0) == .int(0)`: a `double` that is integral and
/// smaller than 2^53 in magnitude is the integer it equals.
///
/// ## Non-finite doubles
/// JSON cannot represent NaN or ±infinity. A `.double` holding one serializes as `null`
/// (in ``canonicalJSON()`` and in `Codable` encoding) and therefore also compares equal to
/// ``null``. The parser (`init(parsing:)`) never produces one: it rejects numbers that
/// overflow a `Double`.
///
/// ## Strings
/// Equality and hashing compare strings — values and object keys — by their UTF-8 bytes, not by
/// Swift's Unicode canonical equivalence, because that is what ``canonicalJSON()`` (and so a
/// cache key) sees: `"é"` precomposed and decomposed are *different* JSON values. (A Swift
/// `Dictionary` cannot hold two keys that are canonically equivalent, so an ``object(_:)`` never
/// contains both forms; the parser rejects such documents as having a duplicate key.)
///
/// The invariant: `a == b` exactly when `a.canonicalJSON() == b.canonicalJSON()`.
public enum JSONValue: Sendable {
    /// The JSON `null`.
    case null
    /// A JSON `true` or `false`.
    case bool(Bool)
    /// A JSON number that is an integer fitting `Int64`.
    case int(Int64)
    /// Any other JSON number. Non-finite values serialize as `null` (see the type documentation).
    case double(Double)
    /// A JSON string.
    case string(String)
    /// A JSON array.
    case array([JSONValue])
    /// A JSON object. Key order is irrelevant; ``canonicalJSON()`` sorts keys by UTF-8 bytes.
    case object([String: JSONValue])
}

// MARK: - Normalised numbers, equality and hashing

extension JSONValue {
    /// Integral doubles below 2^53 in magnitude become `.int`, non-finite doubles become `.null`;
    /// everything else is returned unchanged (shallow).
    var numberNormalized: JSONValue {
        guard case .double(let value) = self else { return self }
        guard value.isFinite else { return .null }
        if let integer = Self.exactInteger(value) { return .int(integer) }
        return self
    }

    /// The integer a double equals, if it is integral and |value| < 2^53.
    static func exactInteger(_ value: Double) -> Int64? {
        guard value.isFinite, value.rounded(.towardZero) == value, value.magnitude < 9_007_199_254_740_992 else { return nil }
        return Int64(value)   // -0.0 becomes 0
    }

    /// Object keys in canonical order: ascending by UTF-8 bytes.
    static func sortedKeys(_ object: [String: JSONValue]) -> [String] {
        object.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

extension JSONValue: Equatable {
    /// Canonical equality: two values are equal exactly when their ``canonicalJSON()`` is equal
    /// (numbers normalised, strings and keys compared by UTF-8 bytes, key order ignored).
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs.numberNormalized, rhs.numberNormalized) {
        case (.null, .null):
            return true
        case let (.bool(a), .bool(b)):
            return a == b
        case let (.int(a), .int(b)):
            return a == b
        case let (.double(a), .double(b)):
            return a == b
        case let (.string(a), .string(b)):
            return a.utf8.elementsEqual(b.utf8)
        case let (.array(a), .array(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0 == $1 }
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            let keysA = sortedKeys(a)
            let keysB = sortedKeys(b)
            for (keyA, keyB) in zip(keysA, keysB) {
                guard keyA.utf8.elementsEqual(keyB.utf8), let valueA = a[keyA], let valueB = b[keyB], valueA == valueB else {
                    return false
                }
            }
            return true
        default:
            return false
        }
    }
}

extension JSONValue: Hashable {
    /// Hashes the canonical form, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        switch numberNormalized {
        case .null:
            hasher.combine(0 as UInt8)
        case .bool(let value):
            hasher.combine(1 as UInt8)
            hasher.combine(value)
        case .int(let value):
            hasher.combine(2 as UInt8)
            hasher.combine(value)
        case .double(let value):
            hasher.combine(3 as UInt8)
            hasher.combine(value.bitPattern)
        case .string(let value):
            hasher.combine(4 as UInt8)
            Self.hashBytes(value, into: &hasher)
        case .array(let values):
            hasher.combine(5 as UInt8)
            hasher.combine(values.count)
            for value in values { value.hash(into: &hasher) }
        case .object(let object):
            hasher.combine(6 as UInt8)
            hasher.combine(object.count)
            for key in Self.sortedKeys(object) {
                Self.hashBytes(key, into: &hasher)
                object[key]?.hash(into: &hasher)
            }
        }
    }

    private static func hashBytes(_ text: String, into hasher: inout Hasher) {
        hasher.combine(text.utf8.count)
        for byte in text.utf8 { hasher.combine(byte) }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    /// `nil` as a JSON value is ``null``. (Where a `JSONValue?` is expected, `nil` still means "absent".)
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    /// A boolean literal is ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    /// An integer literal is ``int(_:)``.
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    /// A floating-point literal is ``double(_:)`` (still equal to ``int(_:)`` when integral).
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    /// A string literal is ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    /// An array literal is ``array(_:)``.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// A dictionary literal is ``object(_:)``; if a key repeats, the last value wins.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

// MARK: - Codable

extension JSONValue: Codable {
    /// Decodes any JSON value. Numbers become ``int(_:)`` when the decoder can produce an exact
    /// `Int64`, else ``double(_:)``. (Foundation's `JSONDecoder` also yields an `Int64` for
    /// integral texts such as `1.0` or `1e2`; that is harmless because numbers compare and
    /// serialize normalised. `init(parsing:)` follows the text exactly.)
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    /// Encodes the value; a non-finite ``double(_:)`` is encoded as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value):
            if value.isFinite { try container.encode(value) } else { try container.encodeNil() }
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let object): try container.encode(object)
        }
    }
}
