import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Serves OpenAI chat-completions requests on one HTTP/1.1 connection.
///
/// `HTTPServerPipelineHandler` (installed by `configureHTTPServerPipeline`) delivers one
/// request at a time, so the handler keeps the state of a single request. All delays are
/// scheduled on the channel's event loop; nothing blocks.
final class ChatCompletionsHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// Parsed HTTP request parts.
    typealias InboundIn = HTTPServerRequestPart
    /// HTTP response parts.
    typealias OutboundOut = HTTPServerResponsePart

    /// The path of the only endpoint.
    static let endpoint = "/v1/chat/completions"
    static let modelsEndpoint = "/v1/models"
    static let embeddingsEndpoint = "/v1/embeddings"
    /// Largest accepted request body.
    static let maxBodyBytes = 16 * 1024 * 1024

    /// One step of a response, run after `delay` (relative to the previous step).
    private struct Step {
        /// Delay after the previous step.
        var delay: Duration
        /// What to do.
        var action: () -> Void
        /// Whether the steps after this one wait for ``SimulatedLLMServer/releaseStreams()``.
        var pausesAfterwards = false
    }

    /// Shared server state.
    private let state: ServerState
    /// Head of the request being received.
    private var head: HTTPRequestHead?
    /// When the head arrived.
    private var receivedAt: ContinuousClock.Instant = .now
    /// Body received so far.
    private var body: [UInt8] = []
    /// Whether the body exceeded ``maxBodyBytes``.
    private var bodyTooLarge = false
    /// Bumped per request and on close; scheduled steps of older generations do nothing.
    private var generation: UInt64 = 0
    /// Pending delayed steps (cancelled when the connection goes away).
    private var scheduled: [Scheduled<Void>] = []

    /// Creates a handler for one connection.
    init(state: ServerState) {
        self.state = state
    }

    // MARK: Channel events

    /// Accumulates the request and handles it once complete.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.receivedAt = .now
            self.body = []
            self.bodyTooLarge = false
        case .body(let buffer):
            if body.count + buffer.readableBytes > Self.maxBodyBytes {
                bodyTooLarge = true
            } else {
                body.append(contentsOf: buffer.readableBytesView)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let body = self.body
            self.body = []
            handle(head: head, body: body, context: context)
        }
    }

    /// Cancels pending steps when the connection closes.
    func channelInactive(context: ChannelHandlerContext) {
        cancelPending()
        context.fireChannelInactive()
    }

    /// Cancels pending steps when the handler leaves the pipeline.
    func handlerRemoved(context: ChannelHandlerContext) {
        cancelPending()
    }

    /// Closes the connection on errors (e.g. connection reset).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.logger?.debug("simulated LLM connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// Invalidates and cancels all delayed steps.
    private func cancelPending() {
        generation &+= 1
        for task in scheduled { task.cancel() }
        scheduled.removeAll()
    }

    // MARK: Request handling

    /// Routes, authenticates, parses, records and answers one request.
    private func handle(head: HTTPRequestHead, body: [UInt8], context: ChannelHandlerContext) {
        generation &+= 1
        scheduled.removeAll()
        let keepAlive = head.isKeepAlive
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if head.method == .GET && path == Self.modelsEndpoint {
            // The model list (not recorded as a call: only completions are counted).
            let authorized = state.apiKey.map { head.headers.first(name: "authorization") == "Bearer \($0)" } ?? true
            let body = authorized
                ? #"{"object":"list","data":[{"id":"sim-model","object":"model","created":0,"owned_by":"simulated"}]}"#
                : ResponseJSON.encode(ErrorBody.forStatus(401))
            sendFull(status: authorized ? 200 : 401, body: body, keepAlive: keepAlive, callID: nil, context: context)
            return
        }
        if head.method == .POST && path == Self.embeddingsEndpoint {
            embeddings(head: head, body: body, keepAlive: keepAlive, context: context)
            return
        }
        let isEndpoint = head.method == .POST && path == Self.endpoint
        let parsed = isEndpoint ? ChatRequest.parse(body) : .failure(RequestError(message: ""))
        let request = try? parsed.get()
        let authorization = head.headers.first(name: "authorization")
        let callID = state.record(
            RecordedCall(
                model: request?.model ?? "",
                stream: request?.stream ?? false,
                lastUserMessage: request?.lastUserMessage ?? "",
                worker: head.headers.first(name: "x-stampede-worker"),
                fenceToken: head.headers.first(name: "x-stampede-fence"),
                authorization: authorization,
                receivedAt: receivedAt,
                status: 0
            )
        )
        state.logger?.trace(
            "simulated LLM request",
            metadata: ["method": "\(head.method)", "uri": "\(head.uri)", "call": "\(callID)"]
        )

        guard isEndpoint else {
            let error = ErrorBody(
                message: "Invalid URL (\(head.method) \(path))",
                type: "invalid_request_error"
            )
            sendFull(status: 404, body: ResponseJSON.encode(error), keepAlive: keepAlive, callID: callID, context: context)
            return
        }
        if let apiKey = state.apiKey, authorization != "Bearer \(apiKey)" {
            sendFull(
                status: 401,
                body: ResponseJSON.encode(ErrorBody.forStatus(401)),
                keepAlive: keepAlive,
                callID: callID,
                context: context
            )
            return
        }
        if bodyTooLarge {
            let error = ErrorBody(message: "Request body too large.", type: "invalid_request_error")
            sendFull(status: 413, body: ResponseJSON.encode(error), keepAlive: false, callID: callID, context: context)
            return
        }
        let chatRequest: ChatRequest
        switch parsed {
        case .success(let value):
            chatRequest = value
        case .failure(let failure):
            let error = ErrorBody(message: failure.message, type: "invalid_request_error")
            sendFull(status: 400, body: ResponseJSON.encode(error), keepAlive: keepAlive, callID: callID, context: context)
            return
        }

        let plan = state.nextPlan()
        let generation = self.generation
        switch plan {
        case .hang:
            state.logger?.debug("simulated LLM hangs", metadata: ["call": "\(callID)"])
        case .answer(let delay, let truncate):
            let answer = SimulatedAnswer(for: chatRequest, truncate: truncate)
            if chatRequest.stream {
                stream(answer, request: chatRequest, delay: delay, cutAfter: nil, keepAlive: keepAlive, callID: callID, context: context)
            } else {
                after(delay, generation: generation, context: context) {
                    self.sendCompletion(answer, request: chatRequest, status: 200, extraHeaders: [], keepAlive: keepAlive, callID: callID, context: context)
                }
            }
        case .status(let status, let retryAfter, let body, let delay):
            let extraHeaders = retryAfter.map { [("Retry-After", $0)] } ?? []
            after(delay, generation: generation, context: context) {
                if body == nil, (200..<300).contains(status) {
                    self.sendCompletion(
                        SimulatedAnswer(for: chatRequest),
                        request: chatRequest,
                        status: status,
                        extraHeaders: extraHeaders,
                        keepAlive: keepAlive,
                        callID: callID,
                        context: context
                    )
                } else {
                    self.sendFull(
                        status: status,
                        body: body ?? ResponseJSON.encode(ErrorBody.forStatus(status)),
                        extraHeaders: extraHeaders,
                        keepAlive: keepAlive,
                        callID: callID,
                        context: context
                    )
                }
            }
        case .malformedJSON(let delay):
            after(delay, generation: generation, context: context) {
                if chatRequest.stream {
                    self.sendFull(
                        status: 200,
                        body: "data: {\"id\":\"chatcmpl-broken\",\"choices\":[{\"delta\":\n\ndata: [DONE]\n\n",
                        contentType: "text/event-stream",
                        keepAlive: keepAlive,
                        callID: callID,
                        context: context
                    )
                } else {
                    self.sendFull(
                        status: 200,
                        body: "{\"id\":\"chatcmpl-broken\",\"object\":\"chat.completion\",\"choices\":[{\"message\":<html>upstream error</html>",
                        keepAlive: keepAlive,
                        callID: callID,
                        context: context
                    )
                }
            }
        case .cut(let chunks, let delay):
            if chatRequest.stream {
                let answer = SimulatedAnswer(for: chatRequest)
                stream(answer, request: chatRequest, delay: delay, cutAfter: chunks, keepAlive: keepAlive, callID: callID, context: context)
            } else {
                after(delay, generation: generation, context: context) {
                    context.close(promise: nil)
                }
            }
        }
    }

    /// Answers `/v1/embeddings` with deterministic unit vectors (see ``SimulatedEmbeddings``),
    /// after the behaviour's latency; scripted statuses apply as for completions.
    private func embeddings(head: HTTPRequestHead, body: [UInt8], keepAlive: Bool, context: ChannelHandlerContext) {
        let authorization = head.headers.first(name: "authorization")
        let parsed = SimulatedEmbeddings.parse(body)
        let callID = state.record(
            RecordedCall(
                model: (try? parsed.get())?.model ?? "", stream: false, lastUserMessage: (try? parsed.get())?.texts.first ?? "",
                worker: head.headers.first(name: "x-stampede-worker"), fenceToken: nil, authorization: authorization,
                receivedAt: receivedAt, status: 0, endpoint: Self.embeddingsEndpoint
            )
        )
        if let apiKey = state.apiKey, authorization != "Bearer \(apiKey)" {
            sendFull(status: 401, body: ResponseJSON.encode(ErrorBody.forStatus(401)), keepAlive: keepAlive, callID: callID, context: context)
            return
        }
        let request: SimulatedEmbeddings
        switch parsed {
        case .success(let value): request = value
        case .failure(let failure):
            sendFull(status: 400, body: ResponseJSON.encode(ErrorBody(message: failure.message, type: "invalid_request_error")), keepAlive: keepAlive, callID: callID, context: context)
            return
        }
        let generation = self.generation
        switch state.nextPlan() {
        case .status(let status, let retryAfter, let body, let delay) where !(200..<300).contains(status) || body != nil:
            after(delay, generation: generation, context: context) {
                self.sendFull(
                    status: status, body: body ?? ResponseJSON.encode(ErrorBody.forStatus(status)),
                    extraHeaders: retryAfter.map { [("Retry-After", $0)] } ?? [], keepAlive: keepAlive, callID: callID, context: context
                )
            }
        case .hang:
            break
        case .answer(let delay, _), .status(_, _, _, let delay), .malformedJSON(let delay), .cut(_, let delay):
            after(delay, generation: generation, context: context) {
                self.sendFull(status: 200, body: request.responseJSON(), keepAlive: keepAlive, callID: callID, context: context)
            }
        }
    }

    // MARK: Sending    // MARK: Sending

    /// Sends a complete response with a `Content-Length` body and records its status.
    private func sendFull(
        status: Int,
        body: String,
        contentType: String = "application/json",
        extraHeaders: [(String, String)] = [],
        keepAlive: Bool,
        callID: Int?,
        context: ChannelHandlerContext
    ) {
        if let callID { state.setStatus(status, of: callID) }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(contentsOf: extraHeaders)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        end(keepAlive: keepAlive, context: context)
    }

    /// Sends a non-streamed `chat.completion`.
    private func sendCompletion(
        _ answer: SimulatedAnswer,
        request: ChatRequest,
        status: Int,
        extraHeaders: [(String, String)],
        keepAlive: Bool,
        callID: Int,
        context: ChannelHandlerContext
    ) {
        let completion = CompletionBody(
            id: state.completionID(hash: answer.hash),
            created: Self.unixNow(),
            model: request.model,
            choices: [.init(
                message: .init(
                    content: answer.text, reasoningContent: answer.reasoning,
                    toolCalls: answer.toolCall.map { [ToolCallBody(id: $0.id, type: "function", function: .init(name: $0.name, arguments: $0.arguments))] }
                ),
                finishReason: answer.finishReason
            )],
            usage: UsageBody(answer)
        )
        sendFull(
            status: status,
            body: ResponseJSON.encode(completion),
            extraHeaders: extraHeaders,
            keepAlive: keepAlive,
            callID: callID,
            context: context
        )
    }

    /// Streams an answer as server-sent events, or cuts it after `cutAfter` content chunks.
    ///
    /// The head and first chunk leave after half the delay, the other chunks follow evenly,
    /// and the final chunk, the usage chunk and `[DONE]` leave once the full delay elapsed.
    private func stream(
        _ answer: SimulatedAnswer,
        request: ChatRequest,
        delay: Duration,
        cutAfter: Int?,
        keepAlive: Bool,
        callID: Int,
        context: ChannelHandlerContext
    ) {
        let pieces = answer.deltas(state.streamChunks)
        let id = state.completionID(hash: answer.hash)
        let created = Self.unixNow()
        let model = request.model
        let firstDelay = delay / 2
        let gap = (delay - firstDelay) / pieces.count

        var steps: [Step] = []
        steps.append(
            Step(delay: firstDelay) {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/event-stream")
                headers.add(name: "Cache-Control", value: "no-cache")
                headers.add(name: "Transfer-Encoding", value: "chunked")
                if !keepAlive { headers.add(name: "Connection", value: "close") }
                let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
                context.write(self.wrapOutboundOut(.head(head)), promise: nil)
            }
        )
        let sentPieces = min(pieces.count, cutAfter ?? pieces.count)
        let holdAfter = state.streamHoldAfterChunks
        for (index, piece) in pieces.prefix(sentPieces).enumerated() {
            let chunk = ChunkBody(
                id: id,
                created: created,
                model: model,
                choices: [.init(delta: piece, finishReason: nil)]
            )
            steps.append(
                Step(delay: index == 0 ? .zero : gap, action: {
                    self.writeEvent(ResponseJSON.encode(chunk), context: context)
                }, pausesAfterwards: index + 1 == holdAfter)
            )
        }
        if cutAfter != nil {
            steps.append(
                Step(delay: .zero) {
                    self.state.logger?.debug("simulated LLM cuts stream", metadata: ["call": "\(callID)"])
                    context.flush()
                    context.close(promise: nil)
                }
            )
        } else {
            let final = ChunkBody(
                id: id,
                created: created,
                model: model,
                choices: [.init(delta: .init(), finishReason: answer.finishReason)]
            )
            let usage = ChunkBody(id: id, created: created, model: model, choices: [], usage: UsageBody(answer))
            steps.append(
                Step(delay: gap) {
                    var buffer = context.channel.allocator.buffer(capacity: 512)
                    buffer.writeString("data: \(ResponseJSON.encode(final))\n\n")
                    buffer.writeString("data: \(ResponseJSON.encode(usage))\n\n")
                    buffer.writeString("data: [DONE]\n\n")
                    self.state.setStatus(200, of: callID)
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                    self.end(keepAlive: keepAlive, context: context)
                }
            )
        }
        run(steps[...], generation: generation, context: context)
    }

    /// Writes and flushes one `data:` event.
    private func writeEvent(_ json: String, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: json.utf8.count + 8)
        buffer.writeString("data: \(json)\n\n")
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    /// Ends the response and closes the connection unless it is kept alive.
    private func end(keepAlive: Bool, context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        scheduled.removeAll()
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    // MARK: Scheduling

    /// Runs `action` after `delay` on the event loop (immediately if the delay is zero),
    /// unless the request was superseded or the connection closed meanwhile.
    private func after(
        _ delay: Duration,
        generation: UInt64,
        context: ChannelHandlerContext,
        _ action: @escaping () -> Void
    ) {
        run([Step(delay: delay, action: action)][...], generation: generation, context: context)
    }

    /// Runs the steps in order, each after its delay relative to the previous one.
    private func run(_ steps: ArraySlice<Step>, generation: UInt64, context: ChannelHandlerContext) {
        var remaining = steps
        while let step = remaining.first {
            guard generation == self.generation, context.channel.isActive else { return }
            if step.delay > .zero {
                var next = remaining
                next[next.startIndex].delay = .zero
                let task = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(max(.zero, step.delay))) {
                    self.run(next, generation: generation, context: context)
                }
                scheduled.append(task)
                return
            }
            remaining.removeFirst()
            step.action()
            if step.pausesAfterwards, !remaining.isEmpty {
                // Resumed on the event loop by releaseStreams(); the handler and context are
                // only touched there (NIOLoopBound checks it).
                let loop = context.eventLoop
                let bound = NIOLoopBound((handler: self, context: context, rest: remaining), eventLoop: loop)
                state.park {
                    loop.execute {
                        let parked = bound.value
                        parked.handler.run(parked.rest, generation: generation, context: parked.context)
                    }
                }
                return
            }
        }
    }

    /// The current Unix time in whole seconds.
    private static func unixNow() -> Int {
        Int(Date().timeIntervalSince1970)
    }
}
