public import RedisClient

/// Why a cache call failed: a ``Code`` to branch on, the key it concerns, and a message that says
/// what happened and what to do.
///
/// A struct with an extensible code (not an enum), so adding a new kind of failure in a later
/// release does not break a user's exhaustive `switch`:
///
/// ```swift
/// do {
///     _ = try await cache.value(for: "k") { try await expensiveCall() }
/// } catch let error as CacheError where error.code == .computationFailedElsewhere {
///     // another worker's call failed; this caller did not retry it
/// }
/// ```
///
/// A cancelled caller gets `CancellationError`, never a `CacheError`.
public struct CacheError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. Compare with `==`; new codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case computationTimedOut, computationFailedElsewhere, valueTooLarge, corruptEntry, waitTimedOut
            case redisUnavailable, redisFailure, invalidKey, invalidOption, closed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The computation exceeded ``CachePolicy/computeTimeout`` and was abandoned.
        public static let computationTimedOut = Code(.computationTimedOut)
        /// Another worker's computation for this key failed and this caller did not retry it (no retry storm).
        public static let computationFailedElsewhere = Code(.computationFailedElsewhere)
        /// The computed value is larger than ``CachePolicy/maxValueBytes``; nothing was written.
        public static let valueTooLarge = Code(.valueTooLarge)
        /// The entry is not a StampedeCache entry or cannot be decoded (it was treated as a miss;
        /// this is thrown only when it could not be repaired).
        public static let corruptEntry = Code(.corruptEntry)
        /// Waited longer than ``CachePolicy/effectiveMaxWait`` for another worker's computation.
        public static let waitTimedOut = Code(.waitTimedOut)
        /// Redis could not be reached and the policy is ``CachePolicy/RedisUnavailable/failClosed``.
        public static let redisUnavailable = Code(.redisUnavailable)
        /// Redis answered in an unexpected way (a script error, a reply of the wrong shape).
        public static let redisFailure = Code(.redisFailure)
        /// The key is empty or longer than 1 KiB.
        public static let invalidKey = Code(.invalidKey)
        /// A per-call option (``CacheRequestOptions``) cannot be used; nothing was read or written.
        public static let invalidOption = Code(.invalidOption)
        /// The cache was closed (``StampedeCache/close()``, or the end of ``StampedeCache/run()``);
        /// it takes no new work. Create a new cache.
        public static let closed = Code(.closed)

        /// The code's name, e.g. `waitTimedOut`.
        public var description: String { base.rawValue }

        /// Lets a `switch` or `catch` over any error match a code:
        /// `catch CacheError.Code.waitTimedOut { … }`.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? CacheError)?.code == code
        }
    }

    /// The kind of failure.
    public let code: Code
    /// The caller's key, when the failure concerns one.
    public let key: String?
    /// What happened and what to do (a Redis error's message is kept verbatim inside it).
    public let message: String
    /// The Redis error behind a ``Code/redisUnavailable`` or ``Code/redisFailure``.
    public let redisError: RedisError?
    /// The computation's failure message, for ``Code/computationFailedElsewhere``.
    public let upstreamMessage: String?
    /// The option at fault, for ``Code/invalidOption`` (e.g. `freshFor`).
    public let option: String?

    /// A cache error (public so adapters and tests can build expected values).
    public init(code: Code, key: String? = nil, message: String, redisError: RedisError? = nil, upstreamMessage: String? = nil, option: String? = nil) {
        self.code = code
        self.key = key
        self.message = message
        self.redisError = redisError
        self.upstreamMessage = upstreamMessage
        self.option = option
    }

    /// `<code>: <message>`.
    public var description: String { "\(code): \(message)" }

    // MARK: Constructors, one per code

    static func computationTimedOut(key: String, timeout: Duration) -> CacheError {
        CacheError(code: .computationTimedOut, key: key, message: "computing '\(key)' took longer than computeTimeout (\(timeout)) and was abandoned; raise computeTimeout (and lockTTL) if the upstream is legitimately this slow")
    }

    static func computationFailedElsewhere(key: String, message: String) -> CacheError {
        CacheError(code: .computationFailedElsewhere, key: key, message: "another worker's computation of '\(key)' failed: \(message) (not retried here, to spare the upstream; the next request retries)", upstreamMessage: message)
    }

    static func valueTooLarge(key: String, size: Int, limit: Int) -> CacheError {
        CacheError(code: .valueTooLarge, key: key, message: "value for '\(key)' is \(size) bytes, over maxValueBytes (\(limit)); nothing was stored. Raise maxValueBytes or store less")
    }

    static func corruptEntry(key: String, reason: String) -> CacheError {
        CacheError(code: .corruptEntry, key: key, message: "the entry at '\(key)' is not a valid StampedeCache entry (\(reason)); it was treated as a miss")
    }

    static func waitTimedOut(key: String, waited: Duration) -> CacheError {
        CacheError(code: .waitTimedOut, key: key, message: "waited \(waited) for another worker to compute '\(key)'; raise maxWait, or check the worker holding the lock")
    }

    static func redisUnavailable(_ error: RedisError, key: String? = nil) -> CacheError {
        CacheError(code: .redisUnavailable, key: key, message: "Redis is unavailable and the cache is fail-closed: \(error)", redisError: error)
    }

    static func redisFailure(_ error: RedisError, key: String? = nil) -> CacheError {
        CacheError(code: .redisFailure, key: key, message: "Redis failure: \(error)", redisError: error)
    }

    static func invalidKey(_ key: String, reason: String) -> CacheError {
        CacheError(code: .invalidKey, key: String(key.prefix(80)), message: "invalid cache key '\(key.prefix(80))': \(reason)")
    }

    static func invalidOption(_ option: String, problem: String) -> CacheError {
        CacheError(code: .invalidOption, message: "invalid request option \(option): \(problem)", option: option)
    }

    static func closed(namespace: String) -> CacheError {
        CacheError(code: .closed, message: "the cache for namespace '\(namespace)' is closed and takes no new work; create a new StampedeCache (a cache run by a ServiceGroup closes when the group shuts down)")
    }
}
