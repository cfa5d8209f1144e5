/// What a computation produced: a value to store (the normal case), or one to hand to this caller
/// and to the callers waiting for it at this moment without storing it.
///
/// Use ``deliverWithoutStoring(_:reason:)`` for answers that were paid for but must not be cached
/// (a truncated or tool-call LLM answer, a personal one): the callers that waited for this
/// computation, in every process, receive it instead of each calling the upstream again; callers
/// that arrive afterwards compute their own.
///
/// ```swift
/// let result = try await cache.value(for: "k") { () async throws -> Computed<[UInt8]> in
///     let answer = try await upstream()
///     return answer.isComplete ? .store(answer.bytes) : .deliverWithoutStoring(answer.bytes, reason: "truncated")
/// }
/// ```
public enum Computed<Value: Sendable>: Sendable {
    /// Store the value under the key and return it.
    case store(Value)
    /// Return the value to this caller and to the callers waiting for it now; store nothing.
    case deliverWithoutStoring(Value, reason: String)
    /// Store the value with its own freshness (instead of the call's `freshFor` or the policy's);
    /// the stale window follows as usual. For values that were already some time old when they
    /// were produced, e.g. an answer reused from a similar request, so that the value is never
    /// served older than the original `freshFor + staleFor`. At least 1 ms is kept.
    case storeWithFreshness(Value, freshFor: Duration)

    /// The computed value, stored or not.
    public var value: Value {
        switch self {
        case .store(let value), .deliverWithoutStoring(let value, _), .storeWithFreshness(let value, _): return value
        }
    }

    /// The same outcome with a transformed value.
    public func map<T: Sendable>(_ transform: (Value) throws -> T) rethrows -> Computed<T> {
        switch self {
        case .store(let value): return .store(try transform(value))
        case .deliverWithoutStoring(let value, let reason): return .deliverWithoutStoring(try transform(value), reason: reason)
        case .storeWithFreshness(let value, let freshFor): return .storeWithFreshness(try transform(value), freshFor: freshFor)
        }
    }
}
