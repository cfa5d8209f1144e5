/// A chat request with what one ``LLMCache`` derives from it before anything else: its
/// ``RequestKey`` and whether it may be cached at all.
///
/// Both depend only on the request and on the cache's configuration (its ``RequestKeyOptions`` and
/// ``CacheabilityPolicy``), so a caller that sees the same request many times (the proxy, for the
/// same request body) can prepare it once with ``LLMCache/prepare(_:)`` and pass the prepared
/// request to ``LLMCache/complete(_:options:)-(PreparedChatRequest,_)`` and the other calls. A
/// request prepared by another cache instance is prepared again by the one answering it, so a
/// prepared request can never carry a key computed under different options. A
/// ``CacheabilityPolicy/requestRule`` is evaluated when the request is prepared: a rule whose
/// answer changes over time applies to a kept prepared request as it was when prepared.
///
/// ```swift
/// let prepared = cache.prepare(ChatRequest(model: "gpt-4o-mini", messages: [.user("Hi")]))
/// let first = try await cache.complete(prepared)
/// let again = try await cache.complete(prepared)   // no canonical JSON, no SHA-256
/// ```
public struct PreparedChatRequest: Sendable, Hashable {
    /// The request.
    public let request: ChatRequest
    /// Its cache key under the preparing cache's key options, or `nil` when the request is not
    /// cacheable (then ``notCachedBecause`` says why).
    public let key: RequestKey?
    /// Why the request bypasses the cache, or `nil` when it may be cached.
    public let notCachedBecause: String?
    /// The ``LLMCache`` instance that prepared it (``LLMCache/instanceID``).
    let preparedBy: UInt64

    init(request: ChatRequest, key: RequestKey?, notCachedBecause: String?, preparedBy: UInt64) {
        self.request = request
        self.key = key
        self.notCachedBecause = notCachedBecause
        self.preparedBy = preparedBy
    }
}
