import Foundation
import HTTPTypes
import Hummingbird
import LLMCache
import Logging
import NIOCore
import StampedeCache

/// `POST /v1/chat/completions`: authenticates the virtual key, reads the request and its cache
/// controls, answers through the tenant's namespace of its upstream's ``LLMCache`` (one upstream call
/// fleet-wide per question), as JSON or as server-sent events.
struct ChatCompletionsEndpoint: Sendable {
    let context: ProxyContext
    let metrics: ProxyMetrics
    let logger: Logger

    static let route = "/v1/chat/completions"

    func respond(to request: Request) async -> Response {
        await metrics.measure(route: Self.route, logger: logger, failing: "chat completion failed") { cache in
            try await handle(request, cache: &cache)
        }
    }

    private func handle(_ request: Request, cache: inout String) async throws -> Response {
        let read = try await ProxyRequest.read(request, context: context)
        let tenant = read.tenant
        guard let llm = context.caches[tenant.upstream] else {
            throw ProxyError(status: .internalServerError, message: "tenant '\(tenant.name)' names an upstream the proxy does not have", type: "server_error")
        }
        let body = try context.recentChatBodies.parsed(read.bytes, namespace: tenant.namespace, upstream: tenant.upstream) { bytes in
            try ParsedChatBody(parsing: bytes, for: llm)
        }
        var directives = read.directives
        if let controls = body.cacheObject { try directives.apply(cacheObject: controls) }
        let (stream, includeUsage, prepared) = (body.stream, body.includeUsage, body.prepared)
        let chat = prepared.request
        try read.checkAllowed(model: chat.model)
        var options = directives.options(for: tenant)
        if directives.onlyIfCached {
            guard let found = try await llm.freshAnswer(prepared, options: options), directives.accepts(found) else {
                cache = "miss"
                throw ProxyError(status: .gatewayTimeout, message: "no fresh answer to this request is cached (Cache-Control: only-if-cached)", type: "cache_miss", code: "only_if_cached")
            }
            cache = found.sourceLabel
            return stream ? ProxyResponses.replayStream(found, includeUsage: includeUsage) : ProxyResponses.completion(found, forced: false, rendered: context.recentRenderedCompletions)
        }
        if stream {
            if directives.constrainsFreshness, !options.noCache, let found = try await llm.freshAnswer(prepared, options: options) {
                // A stream cannot be taken back once it has started: the stored answer is checked
                // against max-age / min-fresh first, and replayed or asked again.
                if directives.accepts(found) {
                    cache = found.sourceLabel
                    return ProxyResponses.replayStream(found, includeUsage: includeUsage)
                }
                options.noCache = true
            }
            // Recorded when the stream ends, with the answer's real source (unknown until then).
            cache = ProxyMetrics.recordedLater
            let metrics = self.metrics
            let started = ContinuousClock.now
            return ProxyResponses.liveStream(llm.stream(prepared, options: options), model: chat.model, includeUsage: includeUsage, forced: options.noCache, logger: logger) { source in
                metrics.record(route: Self.route, status: 200, cache: source, duration: ContinuousClock.now - started)
            }
        }
        var result = try await llm.complete(prepared, options: options)
        if result.source.isHit, !directives.accepts(result) {
            // Older than the caller accepts, or not fresh long enough: ask again, bypassing the
            // stored answer (concurrent callers still share one upstream call), and store the new one.
            options.noCache = true
            result = try await llm.complete(prepared, options: options)
        }
        cache = result.sourceLabel
        return ProxyResponses.completion(result, forced: options.noCache, rendered: context.recentRenderedCompletions)
    }
}
