import Foundation
import StampedeCache

extension LLMCache {
    /// The embeddings for `request`, from the cache or from one call to `upstream` fleet-wide:
    /// embeddings are deterministic for a model and input, so concurrent and repeated identical
    /// requests share one upstream call, in `options.namespace` (tenants never share vectors).
    ///
    /// Keyed by ``EmbeddingsRequest/cacheKey`` (model, input, dimensions and any other field; not
    /// `user` nor `encoding_format`). `options` apply as for completions (`noCache`, `noStore`,
    /// `ttl`, `maxStale`, `staleIfError`). A response larger than the policy's `maxValueBytes`
    /// is answered without being stored.
    /// - Throws: ``UpstreamError`` when this worker called the upstream and it failed, ``CacheError``.
    public func embeddings(_ request: EmbeddingsRequest, using upstream: OpenAIEmbeddingsClient, options: LLMRequestOptions = LLMRequestOptions()) async throws -> EmbeddingsResult {
        try checkOpen()
        let namespace = options.namespace ?? configuration.namespace
        let cache = try caches.cache(for: namespace)
        defer { caches.touch(namespace) }
        let timeout = configuration.policy.computeTimeout
        let limit = configuration.policy.maxValueBytes
        let cacheOptions = CacheRequestOptions(
            maxStale: options.maxStale, freshFor: options.ttl, forceRefresh: options.noCache, noStore: options.noStore, staleIfError: options.staleIfError
        )
        let credential = options.upstreamAPIKey ?? UpstreamAPIKey.current
        let result = try await cache.value(for: request.cacheKey, as: EmbeddingsResponse.self, options: cacheOptions) { () async throws -> Computed<EmbeddingsResponse> in
            let response = try await UpstreamAPIKey.$current.withValue(credential) {
                try await upstream.respond(to: request, deadline: ContinuousClock.now + timeout)
            }
            // About 4 bytes per dimension (base64 in JSON: 5.4) plus a small header.
            let size = response.vectors.reduce(0) { $0 + $1.count } * 16 / 3 + 256
            if size > limit {
                return .deliverWithoutStoring(response, reason: "the vectors (about \(size) bytes) are larger than the policy's maxValueBytes (\(limit))")
            }
            return .store(response)
        }
        return EmbeddingsResult(response: result.value, source: result.source, age: result.age, calledUpstream: result.computedHere, notCachedBecause: result.notCachedBecause)
    }
}
