public import Hummingbird
public import Logging

/// The proxy's routes (OpenAI's paths, plus health, readiness and metrics), behind a
/// ``ProxyResponder`` that answers the chat completions route without walking them.
public enum ProxyRouter {
    /// Builds the proxy's responder over `context`; with `tracing`, every request gets a server span.
    public static func build(_ context: ProxyContext, logger: Logger, tracing: Bool = false) -> ProxyResponder {
        let metrics = ProxyMetrics()
        let chat = ChatCompletionsEndpoint(context: context, metrics: metrics, logger: logger)
        let models = ModelsEndpoint(context: context, metrics: metrics)
        let embeddings = EmbeddingsEndpoint(context: context, metrics: metrics, logger: logger)
        let health = HealthEndpoints(context: context)
        let router = Router(context: BasicRequestContext.self)
        // One server span per request (continuing an incoming W3C `traceparent`); the cache's and
        // the upstream call's spans are its children. Only when traces are exported: even with no
        // tracer the middleware costs about 3% of a hit's CPU.
        if tracing { router.add(middleware: TracingMiddleware()) }
        router.post("/v1/chat/completions") { request, _ in await chat.respond(to: request) }
        router.post("/chat/completions") { request, _ in await chat.respond(to: request) }
        router.post("/v1/embeddings") { request, _ in await embeddings.respond(to: request) }
        router.post("/embeddings") { request, _ in await embeddings.respond(to: request) }
        router.get("/v1/models") { request, _ in await models.respond(to: request) }
        router.get("/healthz") { _, _ in health.healthz() }
        router.get("/readyz") { _, _ in await health.readyz() }
        router.get("/metrics") { _, _ in health.metrics() }
        return ProxyResponder(chat: tracing ? nil : chat, router: router)
    }
}
