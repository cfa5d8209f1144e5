import Foundation

/// A finished chat completion: the part of an OpenAI response worth caching.
public struct ChatCompletion: Sendable, Hashable, Codable {
    /// Token counts reported by the upstream.
    public struct Usage: Sendable, Hashable, Codable {
        /// Tokens in the prompt.
        public var promptTokens: Int
        /// Tokens in the answer.
        public var completionTokens: Int
        /// Their sum.
        public var totalTokens: Int { promptTokens + completionTokens }

        /// Creates usage counts.
        public init(promptTokens: Int, completionTokens: Int) {
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
        }
    }

    /// The upstream's response id.
    public var id: String
    /// The model that answered (as reported by the upstream).
    public var model: String
    /// The assistant's text.
    public var content: String
    /// Why generation stopped: `stop`, `length`, `tool_calls`, `content_filter`, ...
    public var finishReason: String?
    /// Token counts, when the upstream reported them.
    public var usage: Usage?
    /// Tool calls requested by the model, as the JSON array of the non-streamed shape
    /// (`[{"id":…,"type":"function","function":{"name":…,"arguments":…}}]`), if any. A streamed
    /// answer's tool-call deltas are merged into the same shape (by `index`, `arguments` joined).
    public var toolCallsJSON: String?
    /// The model's reasoning text, for upstreams that send it (`reasoning_content`, as DeepSeek and
    /// vLLM do, or `reasoning`), if any. Kept so a cached answer replays the way it was first sent.
    public var reasoningContent: String?

    /// Creates a completion.
    public init(
        id: String, model: String, content: String, finishReason: String?, usage: Usage?, toolCallsJSON: String? = nil,
        reasoningContent: String? = nil
    ) {
        self.id = id
        self.model = model
        self.content = content
        self.finishReason = finishReason
        self.usage = usage
        self.toolCallsJSON = toolCallsJSON
        self.reasoningContent = reasoningContent
    }
}

/// What a streaming call yields.
///
/// Reasoning and answer text arrive as the upstream sends them (for a hit, each whole, reasoning
/// first); tool calls arrive whole, in the completed answer (``ChatCompletion/toolCallsJSON``).
public enum ChatStreamEvent: Sendable, Hashable {
    /// A piece of the answer, in order. For a cache hit or a value received from another worker,
    /// the whole answer arrives as one piece.
    case delta(String)
    /// A piece of the model's reasoning (``ChatCompletion/reasoningContent``), in order, before
    /// the answer's pieces.
    case reasoning(String)
    /// The finished completion (always last) and where it came from.
    case completed(LLMResult)
}

// MARK: Wire decoding (OpenAI error shape)

struct WireError: Decodable {
    struct Body: Decodable {
        var message: String?
        var type: String?
        var code: String?
    }
    var error: Body?
}
