import Foundation
import HTTPTypes
import Hummingbird
import LLMCache
import Logging
import NIOCore

/// Builds the proxy's HTTP responses: JSON completions with their cache headers, OpenAI-shaped
/// errors, and server-sent-event streams.
enum ProxyResponses {
    static let cacheStatus = HTTPField.Name("Cache-Status")!
    static let stampedeSource = HTTPField.Name("X-Stampede-Source")!
    static let age = HTTPField.Name("Age")!

    /// A JSON body with `status`.
    static func json(_ text: String, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// An OpenAI-shaped error.
    static func error(_ error: ProxyError) -> Response {
        json(error.jsonBody, status: error.status)
    }

    /// The cache headers of `result` (appended: the fields are new, so no field is looked up).
    static func cacheHeaders(_ result: LLMResult, forced: Bool, capacity: Int = 3) -> HTTPFields {
        var headers = HTTPFields()
        headers.reserveCapacity(capacity)
        headers.append(HTTPField(name: cacheStatus, value: CacheStatus.value(for: result, forced: forced)))
        headers.append(HTTPField(name: stampedeSource, value: result.sourceLabel))
        if result.source.isHit || result.semantic != nil { headers.append(HTTPField(name: age, value: CacheStatus.age(of: result))) }
        return headers
    }

    /// A non-streamed completion, its body rendered or shared with the hits on the same answer
    /// in the same second (`rendered`).
    static func completion(_ result: LLMResult, forced: Bool, rendered: RecentRenderedCompletions) -> Response {
        var headers = cacheHeaders(result, forced: forced, capacity: 4)
        headers.append(HTTPField(name: .contentType, value: "application/json"))
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: rendered.body(for: result.completion, created: now())))
    }

    /// A stored answer replayed as a stream: re-chunked, with the finish reason, the usage (when
    /// asked for) and `[DONE]`.
    static func replayStream(_ result: LLMResult, includeUsage: Bool) -> Response {
        var headers = cacheHeaders(result, forced: false)
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let completion = result.completion
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let created = now()
            var first = true
            for piece in CompletionJSON.pieces(of: completion.reasoningContent ?? "") {
                try await writer.write(event(CompletionJSON.deltaChunk(id: completion.id, model: completion.model, created: created, content: piece, reasoning: true, first: first)))
                first = false
            }
            for piece in CompletionJSON.pieces(of: completion.content) {
                try await writer.write(event(CompletionJSON.deltaChunk(id: completion.id, model: completion.model, created: created, content: piece, first: first)))
                first = false
            }
            try await writer.write(event(CompletionJSON.finishChunk(completion, created: created, first: first, extra: ["stampede": sourceReport(result, forced: false)])))
            if includeUsage, let usage = CompletionJSON.usageChunk(completion, created: created) { try await writer.write(event(usage)) }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        })
    }

    /// A live stream: the leader's pieces as the upstream sends them; a hit's or another worker's
    /// answer re-chunked. The headers go out before the source is known, so the stream's last
    /// chunk carries `stampede: {source, cache_status, age}` and the same values follow as HTTP
    /// trailers. A stream that fails midway ends with an OpenAI-shaped `error` event and no `[DONE]`.
    /// `finished` is told, once, how the stream ended: the answer's source label, `error` (failed
    /// midway) or `cancelled` (the client went away).
    static func liveStream(
        _ events: AsyncThrowingStream<ChatStreamEvent, any Error>, model requested: String, includeUsage: Bool, forced: Bool, logger: Logger,
        finished: @escaping @Sendable (String) -> Void = { _ in }
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("Trailer")!] = "Cache-Status, X-Stampede-Source"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let created = now()
            let id = "chatcmpl-stampede-\(UInt64.random(in: 0..<UInt64.max))"
            var first = true
            do {
                for try await event in events {
                    switch event {
                    case .delta(let piece), .reasoning(let piece):
                        let reasoning = if case .reasoning = event { true } else { false }
                        for part in CompletionJSON.pieces(of: piece) {
                            try await writer.write(self.event(CompletionJSON.deltaChunk(id: id, model: requested, created: created, content: part, reasoning: reasoning, first: first)))
                            first = false
                        }
                    case .completed(let result):
                        var completion = result.completion
                        completion.id = id
                        try await writer.write(self.event(CompletionJSON.finishChunk(completion, created: created, first: first, extra: ["stampede": sourceReport(result, forced: forced)])))
                        if includeUsage, let usage = CompletionJSON.usageChunk(completion, created: created) { try await writer.write(self.event(usage)) }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                        var trailers = HTTPFields()
                        trailers[cacheStatus] = CacheStatus.value(for: result, forced: forced)
                        trailers[stampedeSource] = result.sourceLabel
                        try await writer.finish(trailers)
                        finished(result.sourceLabel)
                        return
                    }
                }
                try await writer.finish(nil)
                finished("error")
            } catch {
                finished(Task.isCancelled || error is CancellationError ? "cancelled" : "error")
                let failure = ProxyFailure.map(error)
                logger.warning("a streamed completion failed midway", metadata: ["status": "\(failure.status.code)", "error": "\(error)"])
                try await writer.write(self.event(failure.jsonBody))
                try await writer.finish(nil)
            }
        })
    }

    /// The `stampede` field of a stream's last chunk: where the answer came from.
    static func sourceReport(_ result: LLMResult, forced: Bool) -> JSONValue {
        .object([
            "source": .string(result.sourceLabel), "cache_status": .string(CacheStatus.value(for: result, forced: forced)),
            "age": .int(Int64(CacheStatus.age(of: result)) ?? 0),
        ])
    }

    private static func event(_ json: String) -> ByteBuffer {
        ByteBuffer(string: "data: \(json)\n\n")
    }

    private static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}
