import Foundation

/// How the `Codable` APIs turn values into stored bytes and back: a type's own
/// ``CacheValueCoding`` when it has one, `JSONEncoder` (sorted keys) and `JSONDecoder` otherwise.
enum StoredJSON {
    /// The bytes to store for `value`.
    /// - Throws: `EncodingError` from `JSONEncoder`.
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        if let coding = value as? any CacheValueCoding { return coding.cacheJSON() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    /// The `T` stored as `bytes`.
    /// - Throws: `DecodingError` from `JSONDecoder` when the bytes are not a `T`.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        if let coding = T.self as? any CacheValueCoding.Type, let value = coding.init(cacheJSON: bytes) as? T {
            return value
        }
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }
}
