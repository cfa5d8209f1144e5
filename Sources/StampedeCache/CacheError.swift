public import RedisClient

/// Why a cache call failed. Every case says what happened and what to do.
public enum CacheError: Error, Sendable, CustomStringConvertible {
    /// The computation exceeded ``CachePolicy/computeTimeout`` and was abandoned.
    case computationTimedOut(key: String, timeout: Duration)
    /// Another worker's computation for this key failed; this caller did not retry it (no retry storm).
    case computationFailedElsewhere(key: String, message: String)
    /// The computed value is larger than ``CachePolicy/maxValueBytes``; nothing was written.
    case valueTooLarge(key: String, size: Int, limit: Int)
    /// The entry stored at the key is not a StampedeCache entry or cannot be decoded. It was treated as
    /// a miss; this error is only thrown when recomputing failed as well.
    case corruptEntry(key: String, reason: String)
    /// Waited longer than ``CachePolicy/effectiveMaxWait`` for another worker's computation.
    case waitTimedOut(key: String, waited: Duration)
    /// Redis could not be reached and the policy is ``CachePolicy/RedisUnavailable/failClosed``.
    case redisUnavailable(RedisError)
    /// Redis answered in an unexpected way (a script error, or a reply of the wrong shape); message verbatim.
    case redisFailure(RedisError)
    /// The key is empty or longer than 1 KiB.
    case invalidKey(String, reason: String)
    /// A per-call option (``CacheRequestOptions``) cannot be used; nothing was read or written.
    case invalidOption(String, problem: String)

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case .computationTimedOut(let key, let timeout):
            return "computing '\(key)' took longer than computeTimeout (\(timeout)) and was abandoned; raise computeTimeout (and lockTTL) if the upstream is legitimately this slow"
        case .computationFailedElsewhere(let key, let message):
            return "another worker's computation of '\(key)' failed: \(message) (not retried here, to spare the upstream; the next request retries)"
        case .valueTooLarge(let key, let size, let limit):
            return "value for '\(key)' is \(size) bytes, over maxValueBytes (\(limit)); nothing was stored. Raise maxValueBytes or store less"
        case .corruptEntry(let key, let reason):
            return "the entry at '\(key)' is not a valid StampedeCache entry (\(reason)); it was treated as a miss"
        case .waitTimedOut(let key, let waited):
            return "waited \(waited) for another worker to compute '\(key)'; raise maxWait, or check the worker holding the lock"
        case .redisUnavailable(let error):
            return "Redis is unavailable and the cache is fail-closed: \(error)"
        case .redisFailure(let error):
            return "Redis failure: \(error)"
        case .invalidKey(let key, let reason):
            return "invalid cache key '\(key.prefix(80))': \(reason)"
        case .invalidOption(let option, let problem):
            return "invalid request option \(option): \(problem)"
        }
    }
}
