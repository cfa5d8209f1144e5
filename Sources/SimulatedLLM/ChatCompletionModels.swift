import Foundation

// MARK: - Request

/// A chat-completions request body, reduced to the fields the simulation uses.
struct ChatRequest: Sendable, Decodable {
    /// One message of the conversation, with its content flattened to text.
    struct Message: Sendable, Decodable {
        /// The message author (`system`, `user`, `assistant`, `tool`, ...).
        var role: String
        /// The text content: a plain string, or the `text` parts joined by newlines.
        var content: String

        /// Coding keys of a message.
        private enum CodingKeys: String, CodingKey {
            /// The JSON keys of a message.
            case role, content
        }

        /// One element of an array-valued `content`.
        private struct Part: Decodable {
            /// The part type (`text`, `image_url`, ...).
            var type: String
            /// The text of a `text` part.
            var text: String?
        }

        /// Decodes a message whose content is a string, an array of parts, null or absent.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.role = try container.decode(String.self, forKey: .role)
            if try !container.contains(.content) || container.decodeNil(forKey: .content) {
                self.content = ""
            } else if let text = try? container.decode(String.self, forKey: .content) {
                self.content = text
            } else {
                let parts = try container.decode([Part].self, forKey: .content)
                self.content = parts.compactMap { $0.type == "text" ? $0.text : nil }.joined(separator: "\n")
            }
        }
    }

    /// The requested model.
    var model: String
    /// The conversation.
    var messages: [Message]
    /// Whether the answer is streamed as server-sent events.
    var stream: Bool
    /// The completion-token limit (`max_completion_tokens` takes precedence over `max_tokens`).
    var maxTokens: Int?
    /// The name of the first function in `tools`, if any: the simulation then answers a user
    /// message with a call to it (as a model that decides to use a tool does).
    var toolName: String?

    /// One entry of `tools`, reduced to its function name.
    private struct Tool: Decodable {
        /// The function's declaration.
        struct Function: Decodable {
            /// The function's name.
            var name: String
        }

        /// The function (absent for other tool types).
        var function: Function?
    }

    /// Coding keys of the request body.
    private enum CodingKeys: String, CodingKey {
        /// Keys read as-is.
        case model, messages, stream, tools
        /// The legacy completion-token limit.
        case maxTokens = "max_tokens"
        /// The newer completion-token limit.
        case maxCompletionTokens = "max_completion_tokens"
    }

    /// Decodes the fields used by the simulation and ignores all others.
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.model = try container.decode(String.self, forKey: .model)
        self.messages = try container.decode([Message].self, forKey: .messages)
        self.stream = try container.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        self.maxTokens =
            try container.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
            ?? container.decodeIfPresent(Int.self, forKey: .maxTokens)
        self.toolName = try container.decodeIfPresent([Tool].self, forKey: .tools)?.first?.function?.name
    }

    /// The text of the last `user` message, or an empty string.
    var lastUserMessage: String {
        messages.last(where: { $0.role == "user" })?.content ?? ""
    }

    /// Parses and validates a request body.
    ///
    /// - Parameter body: The raw request body.
    /// - Returns: The request, or the OpenAI-style message explaining why it is invalid.
    static func parse(_ body: [UInt8]) -> Result<ChatRequest, RequestError> {
        let request: ChatRequest
        do {
            request = try JSONDecoder().decode(ChatRequest.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            return .failure(RequestError(message: "Missing required parameter: '\(path)'."))
        } catch let DecodingError.typeMismatch(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(RequestError(message: "Invalid type for '\(path)'."))
        } catch let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(RequestError(message: "Invalid value for '\(path)': expected a value, got null."))
        } catch {
            return .failure(
                RequestError(
                    message:
                        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
                )
            )
        }
        if request.messages.isEmpty {
            return .failure(
                RequestError(message: "Invalid 'messages': empty array. Expected an array with minimum length 1.")
            )
        }
        if let maxTokens = request.maxTokens, maxTokens < 1 {
            return .failure(
                RequestError(
                    message: "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got \(maxTokens) instead."
                )
            )
        }
        return .success(request)
    }
}

/// Why a request body was rejected with `400`.
struct RequestError: Error, Sendable {
    /// The OpenAI-style error message.
    var message: String
}

// MARK: - Answer generation

/// The deterministic answer to a request, with its usage numbers.
struct SimulatedAnswer: Sendable {
    /// The assistant text.
    var text: String
    /// `"stop"`, or `"length"` when the text was cut.
    var finishReason: String
    /// `max(1, ceil(characters of all message contents / 4))`.
    var promptTokens: Int
    /// `ceil(characters of text / 4)`.
    var completionTokens: Int
    /// The 8-hex-digit FNV-1a hash of the messages.
    var hash: String
    /// Reasoning text, for models whose name starts with `sim-reasoner` (sent as
    /// `reasoning_content`, as DeepSeek's reasoner does).
    var reasoning: String?
    /// A call to the request's first tool, when it offers tools and its last message is the
    /// user's: `finish_reason` is then `tool_calls` and the text is empty.
    var toolCall: SimulatedToolCall?

    /// Builds the answer for a request.
    ///
    /// Same model and messages always give the same text. The text is a fixed sentence
    /// quoting the last user message, extended with filler words to a hash-dependent length
    /// of 20–120 words. A `max_tokens` smaller than the completion tokens cuts the text to
    /// `max_tokens * 4` characters; `truncate` cuts it to about half. Both set
    /// `finish_reason` to `"length"`.
    ///
    /// - Parameters:
    ///   - request: The parsed request.
    ///   - truncate: Whether to cut the answer (scripted `.truncated`).
    init(for request: ChatRequest, truncate: Bool = false) {
        let hashValue = Self.fnv1a(messages: request.messages)
        let hash = Self.hex8(hashValue)
        let quoted = String(request.lastUserMessage.prefix(60))
        var text = "Simulated answer to \"\(quoted)\" (model \(request.model), \(hash))."
        text += Self.filler(seed: hashValue, words: 20 + Int(hashValue % 101) - Self.wordCount(text))
        var finishReason = "stop"
        if truncate {
            text = String(text.prefix(max(1, text.count / 2)))
            finishReason = "length"
        }
        if let maxTokens = request.maxTokens, maxTokens < Self.tokens(text.count) {
            text = String(text.prefix(maxTokens * 4))
            finishReason = "length"
        }
        let promptCharacters = request.messages.reduce(0) { $0 + $1.content.count }
        if request.model.hasPrefix("sim-reasoner") {
            self.reasoning = "Thinking about \"\(quoted)\" (\(hash)): the user wants a short, direct answer."
        }
        if let toolName = request.toolName, request.messages.last?.role == "user" {
            let arguments = ResponseJSON.encode(["query": quoted])
            self.toolCall = SimulatedToolCall(id: "call_\(hash)", name: toolName, arguments: arguments)
            text = ""
            finishReason = "tool_calls"
        }
        self.text = text
        self.finishReason = finishReason
        self.promptTokens = max(1, Self.tokens(promptCharacters))
        self.completionTokens = Self.tokens(text.count)
        self.hash = hash
    }

    /// Approximates a token count as one token per four characters, rounded up.
    static func tokens(_ characters: Int) -> Int {
        (characters + 3) / 4
    }

    /// 32-bit FNV-1a over the roles and contents of the messages (with separators).
    static func fnv1a(messages: [ChatRequest.Message]) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        /// Folds one byte into the hash.
        func mix(_ byte: UInt8) {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        for message in messages {
            for byte in message.role.utf8 { mix(byte) }
            mix(0x1F)
            for byte in message.content.utf8 { mix(byte) }
            mix(0x1E)
        }
        return hash
    }

    /// Formats a value as exactly eight lowercase hex digits.
    static func hex8(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Counts whitespace-separated words.
    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: \.isWhitespace).count
    }

    /// Words the filler text is made of.
    private static let vocabulary = [
        "the", "cache", "keeps", "answers", "fresh", "while", "workers", "wait", "for", "a",
        "single", "upstream", "call", "and", "tokens", "flow", "through", "simulated", "latency",
        "budget", "lease", "fence", "stampede", "request", "model", "response", "stream",
        "quietly", "eventually", "consistent", "value", "shared",
    ]

    /// Deterministic filler sentences totalling `words` words (nothing if `words <= 0`),
    /// each preceded by a space.
    static func filler(seed: UInt32, words: Int) -> String {
        guard words > 0 else { return "" }
        var generator = SplitMix64(seed: UInt64(seed))
        var result = ""
        var remaining = words
        while remaining > 0 {
            let length = min(remaining, 6 + Int(generator.next() % 7))
            remaining -= length
            for index in 0..<length {
                var word = vocabulary[Int(generator.next() % UInt64(vocabulary.count))]
                if index == 0 { word = word.prefix(1).uppercased() + word.dropFirst() }
                result += " " + word
            }
            result += "."
        }
        return result
    }

    /// The streamed deltas: the reasoning in two pieces, the text in `count` pieces, then the tool
    /// call as OpenAI streams one (its id, type and name with empty arguments, then the arguments in
    /// three pieces). The first delta carries the role.
    func deltas(_ count: Int) -> [ChunkBody.Choice.Delta] {
        var deltas: [ChunkBody.Choice.Delta] = []
        if let reasoning {
            deltas += Self.split(reasoning, 2).map { ChunkBody.Choice.Delta(reasoningContent: $0) }
        }
        if !text.isEmpty || (reasoning == nil && toolCall == nil) {
            deltas += Self.split(text, count).map { ChunkBody.Choice.Delta(content: $0) }
        }
        if let toolCall {
            deltas.append(ChunkBody.Choice.Delta(toolCalls: [.init(index: 0, id: toolCall.id, type: "function", function: .init(name: toolCall.name, arguments: ""))]))
            for piece in Self.split(toolCall.arguments, 3) {
                deltas.append(ChunkBody.Choice.Delta(toolCalls: [.init(index: 0, function: .init(arguments: piece))]))
            }
        }
        if !deltas.isEmpty { deltas[0].role = "assistant" }
        return deltas
    }

    /// Splits `text` into `count` consecutive pieces (by characters) that concatenate to it.
    static func split(_ text: String, _ count: Int) -> [String] {
        let characters = Array(text)
        let count = max(1, count)
        return (0..<count).map { index in
            String(characters[(index * characters.count / count)..<((index + 1) * characters.count / count)])
        }
    }
}

// MARK: - Response bodies

/// Token usage of an answer.
struct UsageBody: Encodable, Sendable {
    /// Tokens of the prompt.
    var promptTokens: Int
    /// Tokens of the completion.
    var completionTokens: Int
    /// Sum of both.
    var totalTokens: Int

    /// Coding keys (snake case).
    private enum CodingKeys: String, CodingKey {
        /// `prompt_tokens`.
        case promptTokens = "prompt_tokens"
        /// `completion_tokens`.
        case completionTokens = "completion_tokens"
        /// `total_tokens`.
        case totalTokens = "total_tokens"
    }

    /// The usage of an answer.
    init(_ answer: SimulatedAnswer) {
        self.promptTokens = answer.promptTokens
        self.completionTokens = answer.completionTokens
        self.totalTokens = answer.promptTokens + answer.completionTokens
    }
}

/// A non-streamed `chat.completion` body.
struct CompletionBody: Encodable, Sendable {
    /// The single choice of the completion.
    struct Choice: Encodable, Sendable {
        /// The assistant message.
        struct Message: Encodable, Sendable {
            /// Always `assistant`.
            var role = "assistant"
            /// The answer text.
            var content: String
            /// The reasoning text, if any.
            var reasoningContent: String?
            /// The tool calls, if any.
            var toolCalls: [ToolCallBody]?

            /// Coding keys (snake case).
            private enum CodingKeys: String, CodingKey {
                /// Keys written as-is.
                case role, content
                /// `reasoning_content`.
                case reasoningContent = "reasoning_content"
                /// `tool_calls`.
                case toolCalls = "tool_calls"
            }
        }

        /// Always 0.
        var index = 0
        /// The assistant message.
        var message: Message
        /// `stop` or `length`.
        var finishReason: String

        /// Coding keys (snake case).
        private enum CodingKeys: String, CodingKey {
            /// Keys written as-is.
            case index, message
            /// `finish_reason`.
            case finishReason = "finish_reason"
        }
    }

    /// The completion id.
    var id: String
    /// Always `chat.completion`.
    var object = "chat.completion"
    /// Unix seconds.
    var created: Int
    /// The requested model.
    var model: String
    /// One choice.
    var choices: [Choice]
    /// Token usage.
    var usage: UsageBody
}

/// One streamed `chat.completion.chunk` event.
struct ChunkBody: Encodable, Sendable {
    /// The delta of one choice.
    struct Choice: Encodable, Sendable {
        /// New content of the message.
        struct Delta: Encodable, Sendable {
            /// `assistant` on the first chunk only.
            var role: String?
            /// The text piece, absent on the final chunk.
            var content: String?
            /// A piece of the reasoning.
            var reasoningContent: String?
            /// Pieces of tool calls.
            var toolCalls: [ToolCallBody]?

            /// Coding keys (snake case).
            private enum CodingKeys: String, CodingKey {
                /// Keys written as-is.
                case role, content
                /// `reasoning_content`.
                case reasoningContent = "reasoning_content"
                /// `tool_calls`.
                case toolCalls = "tool_calls"
            }
        }

        /// Always 0.
        var index = 0
        /// The delta.
        var delta: Delta
        /// `null` until the final chunk.
        var finishReason: String?

        /// Coding keys (snake case).
        private enum CodingKeys: String, CodingKey {
            /// Keys written as-is.
            case index, delta
            /// `finish_reason`.
            case finishReason = "finish_reason"
        }

        /// Encodes `finish_reason` as an explicit `null` while the stream is running.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(delta, forKey: .delta)
            try container.encode(finishReason, forKey: .finishReason)
        }
    }

    /// The completion id (same for all chunks of a stream).
    var id: String
    /// Always `chat.completion.chunk`.
    var object = "chat.completion.chunk"
    /// Unix seconds.
    var created: Int
    /// The requested model.
    var model: String
    /// The choices (empty on the usage chunk).
    var choices: [Choice]
    /// Usage, on the last chunk only.
    var usage: UsageBody?
}

/// A tool call, whole (non-streamed, without `index`) or as a streamed piece (with `index`).
struct ToolCallBody: Encodable, Sendable {
    /// The function called.
    struct Function: Encodable, Sendable {
        /// Its name (first piece only, when streamed).
        var name: String?
        /// Its JSON arguments (or a piece of them).
        var arguments: String
    }

    /// The call's position (streamed pieces only).
    var index: Int?
    /// The call's id (first piece only, when streamed).
    var id: String?
    /// `function` (first piece only, when streamed).
    var type: String?
    /// The function and arguments.
    var function: Function
}

/// The tool call a simulated answer makes.
struct SimulatedToolCall: Sendable {
    /// `call_<hash>`.
    var id: String
    /// The first offered tool's function name.
    var name: String
    /// `{"query": <the last user message, first 60 characters>}`.
    var arguments: String
}

/// An OpenAI-style error body: `{"error":{"message":...,"type":...,"code":...}}`.
struct ErrorBody: Encodable, Sendable {
    /// The error details.
    struct Detail: Encodable, Sendable {
        /// Human-readable message.
        var message: String
        /// Error type, e.g. `invalid_request_error`.
        var type: String
        /// Error code, or `null`.
        var code: String?

        /// Encodes `code` as an explicit `null` when absent.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(code, forKey: .code)
        }

        /// Coding keys.
        private enum CodingKeys: String, CodingKey {
            /// Keys written as-is.
            case message, type, code
        }
    }

    /// The error details.
    var error: Detail

    /// Creates an error body.
    init(message: String, type: String, code: String? = nil) {
        self.error = Detail(message: message, type: type, code: code)
    }

    /// The default body for a status without a scripted body.
    static func forStatus(_ status: Int) -> ErrorBody {
        switch status {
        case 400:
            ErrorBody(message: "Bad request.", type: "invalid_request_error")
        case 401:
            ErrorBody(message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key")
        case 403:
            ErrorBody(message: "You are not allowed to access this resource.", type: "invalid_request_error")
        case 404:
            ErrorBody(message: "The requested resource does not exist.", type: "invalid_request_error")
        case 429:
            ErrorBody(
                message: "Rate limit reached for requests. Please try again later.",
                type: "requests",
                code: "rate_limit_exceeded"
            )
        case 503:
            ErrorBody(message: "The engine is currently overloaded, please try again later.", type: "server_error")
        case 500...:
            ErrorBody(
                message: "The server had an error while processing your request. Sorry about that!",
                type: "server_error"
            )
        default:
            ErrorBody(message: "Simulated error (HTTP \(status)).", type: "invalid_request_error")
        }
    }
}

/// JSON encoding of response bodies.
enum ResponseJSON {
    /// Encodes a value as compact JSON text (sorted keys, so bodies are byte-for-byte deterministic).
    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        // Encoding these plain structs of strings and integers cannot fail.
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
