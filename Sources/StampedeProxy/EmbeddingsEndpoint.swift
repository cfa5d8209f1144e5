import Foundation
import HTTPTypes
import Hummingbird
import LLMCache
import Logging
import StampedeCache

/// `POST /v1/embeddings`: embeddings are deterministic for a model and input, so identical
/// requests in a tenant's namespace share one upstream call fleet-wide and are served from the
/// cache afterwards; vectors are stored once (float32) and written as the caller asks (`float` or
/// `base64`). The cache controls mean what they mean for completions.
struct EmbeddingsEndpoint: Sendable {
    let context: ProxyContext
    let metrics: ProxyMetrics
    let logger: Logger

    static let route = "/v1/embeddings"

    func respond(to request: Request) async -> Response {
        await metrics.measure(route: Self.route, logger: logger, failing: "embeddings request failed") { cache in
            try await handle(request, cache: &cache)
        }
    }

    private func handle(_ request: Request, cache: inout String) async throws -> Response {
        var read = try await ProxyRequest.read(request, context: context)
        let body = try read.jsonBody()
        let embeddingsRequest: EmbeddingsRequest
        do {
            embeddingsRequest = try EmbeddingsRequest(openAIBody: .object(body))
        } catch {
            throw ProxyError.badRequest(error.message, param: error.param)
        }
        try read.checkAllowed(model: embeddingsRequest.model)
        let tenant = read.tenant
        guard let llm = context.caches[tenant.upstream], let client = context.embeddings[tenant.upstream] else {
            throw ProxyError(status: .internalServerError, message: "tenant '\(tenant.name)' names an upstream the proxy does not have", type: "server_error")
        }
        let options = read.directives.options(for: tenant)
        if read.directives.onlyIfCached {
            let namespace = options.namespace ?? tenant.namespace
            guard let found = try await llm.cache(for: namespace).freshValue(for: embeddingsRequest.cacheKey, as: EmbeddingsResponse.self),
                  read.directives.maxAge.map({ found.age <= .seconds($0) }) ?? true
            else {
                cache = "miss"
                throw ProxyError(status: .gatewayTimeout, message: "no fresh embeddings for this request are cached (Cache-Control: only-if-cached)", type: "cache_miss", code: "only_if_cached")
            }
            cache = found.source.label
            return Self.render(found.value, format: embeddingsRequest.encodingFormat, source: found.source, stored: true, age: found.age, forced: false)
        }
        var result = try await llm.embeddings(embeddingsRequest, using: client, options: options)
        var forced = options.noCache
        if let maxAge = read.directives.maxAge, maxAge > 0, result.source.isHit, result.age > .seconds(maxAge) {
            var again = options
            again.noCache = true
            forced = true
            result = try await llm.embeddings(embeddingsRequest, using: client, options: again)
        }
        cache = result.source.label
        return Self.render(result.response, format: embeddingsRequest.encodingFormat, source: result.source, stored: result.notCachedBecause == nil, age: result.age, forced: forced)
    }

    /// OpenAI's `list` of `embedding` objects, vectors as JSON numbers (shortest float32 form) or
    /// base64 of their little-endian float32 bytes, with the cache headers.
    static func render(_ response: EmbeddingsResponse, format: EmbeddingsRequest.EncodingFormat, source: CacheSource, stored: Bool, age: Duration, forced: Bool) -> Response {
        var text = #"{"object":"list","data":["#
        for (index, vector) in response.vectors.enumerated() {
            if index > 0 { text += "," }
            text += #"{"object":"embedding","index":\#(index),"embedding":"#
            switch format {
            case .float:
                text += "[" + vector.map { "\($0)" }.joined(separator: ",") + "]"
            case .base64:
                text += "\"" + EmbeddingsResponse.bytes(vector).base64EncodedString() + "\""
            }
            text += "}"
        }
        text += #"],"model":\#(JSONValue.string(response.model).canonicalJSON()),"usage":{"prompt_tokens":\#(response.promptTokens),"total_tokens":\#(response.promptTokens)}}"#
        var headers = HTTPFields()
        headers[ProxyResponses.cacheStatus] = CacheStatus.value(source: source, stored: stored, forced: forced)
        headers[ProxyResponses.stampedeSource] = source.label
        if source.isHit { headers[ProxyResponses.age] = CacheStatus.age(age) }
        return ProxyResponses.json(text, headers: headers)
    }
}
