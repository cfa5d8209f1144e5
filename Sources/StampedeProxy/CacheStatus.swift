import LLMCache
import StampedeCache

/// The response headers that say where an answer came from: `Cache-Status` (RFC 9211, cache name
/// `stampede`), `Age` (RFC 9111, seconds by the Redis server's clock) and `X-Stampede-Source`
/// (the library's source name). No header ever carries a cache key.
enum CacheStatus {
    /// The `Cache-Status` value for `result`; `forced` when the caller sent `no-cache`.
    static func value(for result: LLMResult, forced: Bool) -> String {
        if result.semantic != nil { return "stampede; hit; detail=semantic" }
        return value(source: result.source, stored: result.notCachedBecause == nil, forced: forced)
    }

    /// The `Cache-Status` value for an answer from `source`; `stored` when a computed answer was stored.
    static func value(source: CacheSource, stored: Bool, forced: Bool) -> String {
        switch source {
        case .freshHit, .freshHitNear, .freshHitEarlyRefresh: return "stampede; hit"
        case .staleHit: return "stampede; hit; detail=stale-while-revalidate"
        case .staleAfterFailure: return "stampede; hit; detail=stale-if-error"
        case .receivedFromOtherWorker, .joinedInProcess: return "stampede; fwd=\(forced ? "request" : "miss"); collapsed"
        case .computed: return "stampede; fwd=\(forced ? "request" : "miss")" + (stored ? "; stored" : "")
        case .computedNotStored, .uncachedRedisUnavailable: return "stampede; fwd=\(forced ? "request" : "miss")"
        }
    }

    /// The `Age` value: whole seconds.
    static func age(of result: LLMResult) -> String {
        age(result.age)
    }

    /// The `Age` value of `age`: whole seconds.
    static func age(_ age: Duration) -> String {
        String(max(0, age.components.seconds))
    }
}
