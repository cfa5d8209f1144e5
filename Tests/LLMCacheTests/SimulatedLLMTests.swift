// The raw-socket client below uses Glibc (the project targets Linux); elsewhere the suite is skipped.
#if canImport(Glibc)
import Foundation
import Glibc
import SimulatedLLM
import Testing

/// Tests of the simulated OpenAI-compatible upstream, exercised through raw HTTP/1.1 over
/// blocking TCP sockets (with receive timeouts, so a broken server fails instead of hanging).
@Suite("SimulatedLLM")
struct SimulatedLLMTests {
    // MARK: Answers

    /// Same request gives the same answer; usage follows the documented arithmetic.
    @Test func deterministicAnswerAndUsage() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        let messages: [[String: Any]] = [
            ["role": "system", "content": "You are terse."],
            ["role": "user", "content": "What is a cache stampede, and how do leases prevent one in practice?"],
        ]
        let first = try completion(port: server.port, body: chatBody(model: "gpt-sim", messages: messages))
        let second = try completion(port: server.port, body: chatBody(model: "gpt-sim", messages: messages))
        let other = try completion(
            port: server.port,
            body: chatBody(model: "gpt-sim", messages: [["role": "user", "content": "Something else"]])
        )
        await server.stop()

        let text = try #require(first.choices.first?.message.content)
        #expect(text == second.choices.first?.message.content)
        #expect(text != other.choices.first?.message.content)
        #expect(text.hasPrefix("Simulated answer to \"What is a cache stampede, and how do leases prevent one in p\" (model gpt-sim, "))
        let words = text.split(separator: " ").count
        #expect((20...130).contains(words))
        #expect(first.object == "chat.completion")
        #expect(first.model == "gpt-sim")
        #expect(first.id.hasPrefix("chatcmpl-"))
        #expect(first.choices.first?.message.role == "assistant")
        #expect(first.choices.first?.finish_reason == "stop")
        let promptCharacters = "You are terse.".count + "What is a cache stampede, and how do leases prevent one in practice?".count
        #expect(first.usage.prompt_tokens == (promptCharacters + 3) / 4)
        #expect(first.usage.completion_tokens == (text.count + 3) / 4)
        #expect(first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens)
    }

    /// Array-of-parts content is read as text and hashes like the equivalent string.
    @Test func contentPartsAreText() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        let parts = try completion(
            port: server.port,
            body: chatBody(model: "m", messages: [["role": "user", "content": [["type": "text", "text": "hello parts"]]]])
        )
        let plain = try completion(
            port: server.port,
            body: chatBody(model: "m", messages: [["role": "user", "content": "hello parts"]])
        )
        #expect(server.calls.first?.lastUserMessage == "hello parts")
        await server.stop()
        #expect(parts.choices.first?.message.content == plain.choices.first?.message.content)
    }

    /// Stream pieces concatenate to the non-stream answer; the stream ends with usage and `[DONE]`.
    @Test func streamMatchesNonStream() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(20)), streamChunks: 5))
        let messages: [[String: Any]] = [["role": "user", "content": "Stream me a story"]]
        let plain = try completion(port: server.port, body: chatBody(model: "gpt-sim", messages: messages))
        let raw = try exchange(port: server.port, body: chatBody(model: "gpt-sim", messages: messages, stream: true))
        await server.stop()

        #expect(raw.status == 200)
        #expect(raw.headers["content-type"] == "text/event-stream")
        #expect(raw.complete)
        let events = sseEvents(raw.body)
        #expect(events.last == "[DONE]")
        let chunks = try events.dropLast().map { try JSONDecoder().decode(Chunk.self, from: Data($0.utf8)) }
        #expect(chunks.count == 5 + 2)
        let contentChunks = chunks.prefix(5)
        #expect(contentChunks.first?.choices.first?.delta.role == "assistant")
        #expect(contentChunks.dropFirst().allSatisfy { $0.choices.first?.delta.role == nil })
        #expect(contentChunks.allSatisfy { $0.object == "chat.completion.chunk" && $0.choices.first?.finish_reason == nil })
        let streamed = contentChunks.map { $0.choices.first?.delta.content ?? "" }.joined()
        #expect(streamed == plain.choices.first?.message.content)
        #expect(chunks[5].choices.first?.finish_reason == "stop")
        #expect(chunks[5].choices.first?.delta.content == nil)
        #expect(chunks[6].choices.isEmpty)
        #expect(chunks[6].usage?.completion_tokens == plain.usage.completion_tokens)
        #expect(Set(chunks.map(\.id)).count == 1)
    }

    /// `max_tokens` and `.truncated` cut the answer with finish reason `length`.
    @Test func maxTokensAndTruncated() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        let messages: [[String: Any]] = [["role": "user", "content": "Tell me everything"]]
        let full = try completion(port: server.port, body: chatBody(model: "m", messages: messages))
        let cut = try completion(port: server.port, body: chatBody(model: "m", messages: messages, extra: ["max_tokens": 3]))
        server.enqueue([.truncated])
        let truncated = try completion(port: server.port, body: chatBody(model: "m", messages: messages))
        await server.stop()

        let fullText = try #require(full.choices.first?.message.content)
        #expect(cut.choices.first?.finish_reason == "length")
        #expect(cut.choices.first?.message.content == String(fullText.prefix(12)))
        #expect(cut.usage.completion_tokens == 3)
        #expect(truncated.choices.first?.finish_reason == "length")
        let truncatedText = try #require(truncated.choices.first?.message.content)
        #expect(fullText.hasPrefix(truncatedText) && truncatedText.count < fullText.count)
    }

    // MARK: Errors

    /// A scripted 429 carries `Retry-After`; the queue then falls back to the behaviour.
    @Test func scripted429CarriesRetryAfter() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        server.enqueue([.status(429, retryAfter: "1"), .status(503)])
        let body = chatBody(model: "m", messages: [["role": "user", "content": "hi"]])
        let limited = try exchange(port: server.port, body: body)
        let overloaded = try exchange(port: server.port, body: body)
        let ok = try exchange(port: server.port, body: body)
        let statuses = server.calls.map(\.status)
        await server.stop()

        #expect(limited.status == 429)
        #expect(limited.headers["retry-after"] == "1")
        let error = try JSONDecoder().decode(ErrorEnvelope.self, from: Data(limited.body.utf8))
        #expect(error.error.code == "rate_limit_exceeded")
        #expect(overloaded.status == 503)
        #expect(ok.status == 200)
        #expect(statuses == [429, 503, 200])
    }

    /// A wrong or missing API key gets 401 `invalid_api_key`; the right one passes.
    @Test func wrongAPIKeyIs401() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)), apiKey: "sk-right")
        let body = chatBody(model: "m", messages: [["role": "user", "content": "hi"]])
        let wrong = try exchange(port: server.port, body: body, headers: [("Authorization", "Bearer sk-wrong")])
        let missing = try exchange(port: server.port, body: body)
        let right = try exchange(port: server.port, body: body, headers: [("Authorization", "Bearer sk-right")])
        await server.stop()

        #expect(wrong.status == 401)
        #expect(missing.status == 401)
        #expect(right.status == 200)
        let error = try JSONDecoder().decode(ErrorEnvelope.self, from: Data(wrong.body.utf8))
        #expect(error.error.message == "Incorrect API key provided")
        #expect(error.error.type == "invalid_request_error")
        #expect(error.error.code == "invalid_api_key")
    }

    /// Malformed request JSON gets 400; unknown paths get 404; both are JSON errors.
    @Test func malformedRequestIs400AndUnknownPathIs404() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        let malformed = try exchange(port: server.port, body: "{\"model\": \"m\", \"messages\": [")
        let missingModel = try exchange(port: server.port, body: "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}")
        let notFound = try exchange(port: server.port, method: "GET", path: "/v1/files", body: "")
        server.enqueue([.malformedJSON])
        let broken = try exchange(port: server.port, body: chatBody(model: "m", messages: [["role": "user", "content": "x"]]))
        await server.stop()

        #expect(malformed.status == 400)
        #expect(malformed.body.contains("\"code\":null"))
        let error = try JSONDecoder().decode(ErrorEnvelope.self, from: Data(malformed.body.utf8))
        #expect(error.error.type == "invalid_request_error")
        #expect(missingModel.status == 400)
        #expect(missingModel.body.contains("model"))
        #expect(notFound.status == 404)
        #expect(notFound.headers["content-type"] == "application/json")
        #expect(broken.status == 200)
        #expect((try? JSONSerialization.jsonObject(with: Data(broken.body.utf8))) == nil)
    }

    /// `.cutStream` sends the given chunks and closes without `[DONE]`; the call records status 0.
    @Test func cutStreamClosesWithoutDone() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero), streamChunks: 4))
        server.enqueue([.cutStream(afterChunks: 2), .cutStream(afterChunks: 1)])
        let messages: [[String: Any]] = [["role": "user", "content": "cut me"]]
        let raw = try exchange(port: server.port, body: chatBody(model: "m", messages: messages, stream: true), keepAlive: true)
        let nonStream = try exchange(port: server.port, body: chatBody(model: "m", messages: messages), keepAlive: true)
        let statuses = server.calls.map(\.status)
        await server.stop()

        #expect(raw.status == 200)
        #expect(raw.eof)
        #expect(!raw.complete)
        let events = sseEvents(raw.body)
        #expect(events.count == 2)
        #expect(!events.contains("[DONE]"))
        #expect(nonStream.status == 0 && nonStream.eof)
        #expect(statuses == [0, 0])
    }

    // MARK: Recording, behaviour, lifecycle

    /// Calls record model, stream flag, last user message and the Stampede headers.
    @Test func callsAreRecordedWithHeaders() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        let before = ContinuousClock.now
        _ = try exchange(
            port: server.port,
            body: chatBody(
                model: "gpt-rec",
                messages: [["role": "user", "content": "first"], ["role": "assistant", "content": "ok"], ["role": "user", "content": "second"]],
                stream: true
            ),
            headers: [("X-Stampede-Worker", "worker-7"), ("X-Stampede-Fence", "42"), ("Authorization", "Bearer any")]
        )
        let calls = server.calls
        #expect(server.callCount == 1)
        server.resetCalls()
        #expect(server.callCount == 0)
        await server.stop()

        let call = try #require(calls.first)
        #expect(call.model == "gpt-rec")
        #expect(call.stream)
        #expect(call.lastUserMessage == "second")
        #expect(call.worker == "worker-7")
        #expect(call.fenceToken == "42")
        #expect(call.authorization == "Bearer any")
        #expect(call.status == 200)
        #expect(call.receivedAt >= before)
    }

    /// Pipelined keep-alive requests on one connection are both answered, in order.
    @Test func keepAliveServesSeveralRequests() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))))
        let connection = try RawConnection(port: server.port)
        let first = request(body: chatBody(model: "a", messages: [["role": "user", "content": "one"]]), keepAlive: true)
        let second = request(body: chatBody(model: "b", messages: [["role": "user", "content": "two"]]), keepAlive: false)
        try connection.transmit(first + second)
        let (bytes, eof) = connection.receiveUntilEOF()
        await server.stop()

        #expect(eof)
        let responses = parseResponses(bytes)
        #expect(responses.map(\.status) == [200, 200])
        let models = try responses.map { try JSONDecoder().decode(Completion.self, from: Data($0.body.utf8)).model }
        #expect(models == ["a", "b"])
    }

    /// Many concurrent connections are answered in parallel (latency is not serialised).
    @Test func concurrentConnections() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(100))))
        let start = ContinuousClock.now
        let connections = try (0..<100).map { _ in try RawConnection(port: server.port) }
        for (index, connection) in connections.enumerated() {
            try connection.transmit(request(body: chatBody(model: "m", messages: [["role": "user", "content": "q\(index)"]])))
        }
        let statuses = connections.map { parseResponses($0.receiveUntilEOF().bytes).first?.status }
        let elapsed = ContinuousClock.now - start
        await server.stop()

        #expect(statuses.allSatisfy { $0 == 200 })
        #expect(elapsed < .seconds(5))  // serialised, 100 x 100 ms would take 10 s; the margin absorbs a loaded machine
    }

    /// A seeded behaviour reproduces the same error pattern.
    @Test func seededBehaviourIsReproducible() async throws {
        /// The statuses of 12 sequential requests to a fresh server seeded with 42.
        func pattern() async throws -> [Int] {
            let server = try await SimulatedLLMServer.start(.init(latency: .uniform(.zero, .milliseconds(1)), errorRate: 0.5, seed: 42))
            let body = chatBody(model: "m", messages: [["role": "user", "content": "x"]])
            var statuses: [Int] = []
            for _ in 0..<12 { statuses.append(try exchange(port: server.port, body: body).status) }
            await server.stop()
            return statuses
        }
        let first = try await pattern()
        let second = try await pattern()
        #expect(first == second)
        #expect(first.contains(500) && first.contains(200))
    }

    /// `stop()` returns promptly with a hung request open, closes it, and is idempotent.
    @Test func stopClosesHungRequest() async throws {
        let server = try await SimulatedLLMServer.start(.init(latency: .fixed(.zero)))
        server.enqueue([.hang])
        let connection = try RawConnection(port: server.port)
        try connection.transmit(request(body: chatBody(model: "m", messages: [["role": "user", "content": "hang"]]), keepAlive: true))
        let deadline = ContinuousClock.now + .seconds(2)
        while server.callCount == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(server.callCount == 1)

        let start = ContinuousClock.now
        await server.stop()
        #expect(ContinuousClock.now - start < .seconds(20))  // returns, rather than waiting on the hung request forever
        let (bytes, eof) = connection.receiveUntilEOF()
        #expect(eof)
        #expect(bytes.isEmpty)
        #expect(server.calls.first?.status == 0)
        await server.stop()
        #expect((try? RawConnection(port: server.port)) == nil)
    }
}

/// Response shapes and raw HTTP helpers, nested so their names cannot clash with other test files.
extension SimulatedLLMTests {
    // MARK: - Response shapes

    /// A non-streamed completion.
    private struct Completion: Decodable {
        /// One choice.
        struct Choice: Decodable {
            /// The assistant message.
            struct Message: Decodable {
                /// Author role.
                var role: String
                /// Answer text.
                var content: String
            }

            /// The message.
            var message: Message
            /// `stop` or `length`.
            var finish_reason: String
        }

        /// Completion id.
        var id: String
        /// Object type.
        var object: String
        /// Model.
        var model: String
        /// Choices.
        var choices: [Choice]
        /// Usage.
        var usage: Usage
    }

    /// Token usage.
    private struct Usage: Decodable {
        /// Prompt tokens.
        var prompt_tokens: Int
        /// Completion tokens.
        var completion_tokens: Int
        /// Sum.
        var total_tokens: Int
    }

    /// A streamed chunk.
    private struct Chunk: Decodable {
        /// One choice delta.
        struct Choice: Decodable {
            /// The delta.
            struct Delta: Decodable {
                /// Role (first chunk only).
                var role: String?
                /// Text piece.
                var content: String?
            }

            /// The delta.
            var delta: Delta
            /// Finish reason (final chunk only).
            var finish_reason: String?
        }

        /// Completion id.
        var id: String
        /// Object type.
        var object: String
        /// Choices.
        var choices: [Choice]
        /// Usage (last chunk only).
        var usage: Usage?
    }

    /// An OpenAI-style error body.
    private struct ErrorEnvelope: Decodable {
        /// Error details.
        struct Detail: Decodable {
            /// Message.
            var message: String
            /// Type.
            var type: String
            /// Code.
            var code: String?
        }

        /// The error.
        var error: Detail
    }

    // MARK: - Raw HTTP helpers

    /// A parsed HTTP response.
    private struct RawResponse {
        /// Status code (0 if no response head arrived).
        var status = 0
        /// Headers with lowercased names.
        var headers: [String: String] = [:]
        /// Body (de-chunked).
        var body = ""
        /// Whether the body was complete (terminating chunk or full content length).
        var complete = false
        /// Whether the server closed the connection.
        var eof = false
    }

    /// Builds a chat-completions JSON body.
    private func chatBody(model: String, messages: [[String: Any]], stream: Bool = false, extra: [String: Any] = [:]) -> String {
        var object: [String: Any] = ["model": model, "messages": messages, "temperature": 0.2]
        if stream { object["stream"] = true }
        object.merge(extra) { $1 }
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Builds the bytes of one HTTP/1.1 request.
    private func request(
        method: String = "POST",
        path: String = "/v1/chat/completions",
        body: String,
        headers: [(String, String)] = [],
        keepAlive: Bool = false
    ) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        text += "Content-Length: \(body.utf8.count)\r\n"
        if !keepAlive { text += "Connection: close\r\n" }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "\r\n" + body
    }

    /// Sends one request on a fresh connection and reads until the server closes it (or, for a
    /// keep-alive request, until one response is complete or the connection closes).
    private func exchange(
        port: Int,
        method: String = "POST",
        path: String = "/v1/chat/completions",
        body: String,
        headers: [(String, String)] = [],
        keepAlive: Bool = false
    ) throws -> RawResponse {
        let connection = try RawConnection(port: port)
        try connection.transmit(request(method: method, path: path, body: body, headers: headers, keepAlive: keepAlive))
        let (bytes, eof) = connection.receiveUntilEOF()
        var response = parseResponses(bytes).first ?? RawResponse()
        response.eof = eof
        return response
    }

    /// Sends a request and decodes the completion.
    private func completion(port: Int, body: String) throws -> Completion {
        let response = try exchange(port: port, body: body)
        try #require(response.status == 200)
        return try JSONDecoder().decode(Completion.self, from: Data(response.body.utf8))
    }

    /// The `data:` payloads of a server-sent-events body.
    private func sseEvents(_ body: String) -> [String] {
        body.components(separatedBy: "\n\n").compactMap { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : nil
        }
    }

    /// Parses consecutive HTTP responses, leniently (an incomplete last one is still returned).
    private func parseResponses(_ bytes: [UInt8]) -> [RawResponse] {
        var responses: [RawResponse] = []
        var rest = bytes[...]
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while let headEnd = rest.firstRange(of: separator) {
            var response = RawResponse()
            let headLines = String(decoding: rest[rest.startIndex..<headEnd.lowerBound], as: UTF8.self)
                .components(separatedBy: "\r\n")
            let statusParts = headLines.first?.split(separator: " ") ?? []
            response.status = statusParts.count > 1 ? Int(statusParts[1]) ?? 0 : 0
            for line in headLines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                response.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            rest = rest[headEnd.upperBound...]
            var body: [UInt8] = []
            if response.headers["transfer-encoding"]?.lowercased() == "chunked" {
                while let lineEnd = rest.firstRange(of: Array("\r\n".utf8)) {
                    let sizeText = String(decoding: rest[rest.startIndex..<lineEnd.lowerBound], as: UTF8.self)
                    guard let size = Int(sizeText, radix: 16) else { break }
                    let dataStart = lineEnd.upperBound
                    if size == 0 {
                        response.complete = true
                        rest = rest[min(rest.endIndex, dataStart + 2)...]
                        break
                    }
                    guard rest.endIndex - dataStart >= size + 2 else {
                        body += rest[dataStart...]
                        rest = rest[rest.endIndex...]
                        break
                    }
                    body += rest[dataStart..<(dataStart + size)]
                    rest = rest[(dataStart + size + 2)...]
                }
            } else {
                let length = Int(response.headers["content-length"] ?? "") ?? rest.count
                let available = min(length, rest.count)
                body += rest.prefix(available)
                response.complete = available == length
                rest = rest.dropFirst(available)
            }
            response.body = String(decoding: body, as: UTF8.self)
            responses.append(response)
        }
        return responses
    }

    /// A blocking TCP connection to `127.0.0.1` with a 3-second receive timeout.
    private final class RawConnection {
        /// The socket descriptor.
        private let descriptor: Int32

        /// Connects, or throws if the connection is refused.
        init(port: Int) throws {
            descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw RawSocketError.socket }
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port)).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            // No close here: a class whose init throws after setting every stored property is
            // deinitialized, and deinit closes the socket. Closing it here as well was a double
            // close that could close a descriptor another thread had just been given (an NIO
            // socket, which then crashed NIO with EBADF in epoll_ctl).
            guard result == 0 else { throw RawSocketError.connect }
        }

        /// Closes the socket.
        deinit {
            close(descriptor)
        }

        /// Sends all bytes of the text.
        func transmit(_ text: String) throws {
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes {
                    Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                guard sent > 0 else { throw RawSocketError.send }
                offset += sent
            }
        }

        /// Reads until the peer closes the connection (`eof == true`) or the timeout elapses.
        func receiveUntilEOF() -> (bytes: [UInt8], eof: Bool) {
            var result: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    result += buffer[0..<count]
                } else {
                    return (result, count == 0)
                }
            }
        }
    }

    /// Failures of the raw test socket.
    private enum RawSocketError: Error {
        /// `socket()` failed.
        case socket
        /// `connect()` failed.
        case connect
        /// `send()` failed.
        case send
    }
}
#endif
