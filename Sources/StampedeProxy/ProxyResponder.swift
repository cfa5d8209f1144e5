public import Hummingbird

/// The proxy's responder: `POST /v1/chat/completions` (the route nearly every request takes) is
/// answered directly, everything else by the router of ``ProxyRouter``. Walking the router's trie
/// cost about 2% of a cached answer's CPU. With tracing on, every request goes through the router,
/// so its tracing middleware sees them all.
public struct ProxyResponder: HTTPResponder, HTTPResponderBuilder {
    /// The request context (Hummingbird's basic one).
    public typealias Context = BasicRequestContext

    let chat: ChatCompletionsEndpoint?
    let routes: Router<BasicRequestContext>.Responder

    init(chat: ChatCompletionsEndpoint?, router: Router<BasicRequestContext>) {
        self.chat = chat
        self.routes = router.buildResponder()
    }

    /// Answers `request`.
    @Sendable public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        if let chat, request.method == .post, request.head.path == ChatCompletionsEndpoint.route {
            return await chat.respond(to: request)
        }
        return try await routes.respond(to: request, context: context)
    }

    /// This responder (Hummingbird's `Application(router:)` asks a builder for its responder).
    public func buildResponder() -> ProxyResponder { self }
}
