/// A `Codable` value that writes and reads its stored JSON itself, faster than `JSONEncoder` and
/// `JSONDecoder` (which go through `Codable`'s keyed containers and existential boxes: for a
/// 1.2 KB completion they took 11–17 µs per encode or decode on the 2-core CI machine, more CPU than
/// the rest of a cache hit).
///
/// The `Codable` APIs (``StampedeCache/value(for:as:options:compute:)``,
/// ``StampedeCache/freshValue(for:as:)``) use these methods when `T` conforms, and `JSONEncoder`
/// (sorted keys) / `JSONDecoder` otherwise. The two must agree, because workers of one fleet may be
/// built with and without the conformance (a rolling deploy):
/// - ``cacheJSON()`` writes JSON that `JSONDecoder` decodes as an equal value;
/// - ``init(cacheJSON:)`` reads what `JSONEncoder` writes for the type. It may return `nil` for
///   anything unusual (a missing field, a number written as `5.0`, a duplicate key): the cache then
///   decodes with `JSONDecoder`, so an entry this initialiser declines is never treated as corrupt
///   on its account.
public protocol CacheValueCoding: Codable, Sendable {
    /// The JSON bytes to store for this value.
    func cacheJSON() -> [UInt8]

    /// The value stored as `bytes`, or `nil` to let `JSONDecoder` decide.
    init?(cacheJSON bytes: [UInt8])
}
