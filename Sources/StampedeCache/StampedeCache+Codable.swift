import Foundation

extension StampedeCache {
    /// The `Codable` value for `key`, stored as JSON (see ``value(for:options:compute:)``):
    /// written by `JSONEncoder` with sorted keys and read by `JSONDecoder`, or by the type itself
    /// when it conforms to ``CacheValueCoding``.
    ///
    /// A stored value that no longer decodes as `T` (for example after you changed the type) is
    /// treated as a miss: it is deleted and computed again, once. Prefer a new namespace or key
    /// prefix when you change a type, so old and new workers don't fight over one key.
    /// - Throws: the error thrown by `compute`, ``CacheError``, or `EncodingError` if `T` cannot be encoded.
    public func value<T: Codable & Sendable>(
        for key: String,
        as type: T.Type = T.self,
        options: CacheRequestOptions = CacheRequestOptions(),
        compute: @escaping @Sendable () async throws -> T
    ) async throws -> CacheResult<T> {
        try await value(for: key, as: type, options: options, produce: { .store(try await compute()) })
    }

    /// The `Codable` value for `key`, where the computation may decide not to store what it
    /// computed (see ``Computed`` and ``value(for:options:produce:)``).
    public func value<T: Codable & Sendable>(
        for key: String,
        as type: T.Type = T.self,
        options: CacheRequestOptions = CacheRequestOptions(),
        produce: @escaping @Sendable () async throws -> Computed<T>
    ) async throws -> CacheResult<T> {
        let encodeAndCompute: @Sendable () async throws -> Computed<[UInt8]> = {
            try await produce().map { try StoredJSON.encode($0) }
        }
        for attempt in 0..<2 {
            let raw = try await value(for: key, options: options, produce: encodeAndCompute)
            do {
                let decoded = try recentValues.decode(T.self, key: key, from: raw.value)
                return raw.map { _ in decoded }
            } catch {
                guard raw.source.isHit || raw.source == .receivedFromOtherWorker, attempt == 0 else {
                    throw CacheError.corruptEntry(key: key, reason: "stored JSON does not decode as \(T.self): \(error)")
                }
                metrics.corrupt.increment()
                diagnosticsBox.update { $0.corruptEntries += 1 }
                logger.error("cached value does not decode; recomputing", metadata: ["key": "\(key)", "type": "\(T.self)", "error": "\(error)"])
                try await invalidate(key: key)
            }
        }
        throw CacheError.corruptEntry(key: key, reason: "stored JSON does not decode as \(T.self)")
    }
}
