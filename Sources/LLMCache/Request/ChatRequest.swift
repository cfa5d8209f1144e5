public import Foundation

/// An OpenAI chat-completions request: what is sent upstream and what a cache key describes.
///
/// Every property except ``user`` can change the answer and is part of the cache key (see
/// ``cacheKey(options:)``). A nil property is *unset*: it is left out of both the wire body and
/// the key, and an unset parameter gives a different key than one explicitly set to the
/// provider's default (`temperature: nil` ≠ `temperature: 1`) — defaults vary by provider and
/// model, so they are never guessed.
public struct ChatRequest: Sendable, Hashable {
    /// The model name, e.g. `gpt-4o-mini` (`model`).
    public var model: String
    /// The conversation (`messages`).
    public var messages: [ChatMessage]
    /// Sampling temperature (`temperature`).
    public var temperature: Double?
    /// Nucleus sampling mass (`top_p`).
    public var topP: Double?
    /// The output token limit (`max_tokens`).
    public var maxTokens: Int?
    /// Stop sequences (`stop`; a single string is a one-element list).
    public var stop: [String]?
    /// The sampling seed (`seed`).
    public var seed: Int?
    /// The number of choices (`n`).
    public var n: Int?
    /// The presence penalty (`presence_penalty`).
    public var presencePenalty: Double?
    /// The frequency penalty (`frequency_penalty`).
    public var frequencyPenalty: Double?
    /// Token-id → bias (`logit_bias`).
    public var logitBias: [String: Int]?
    /// Tool definitions (`tools`), kept verbatim.
    public var tools: JSONValue?
    /// The tool choice (`tool_choice`), kept verbatim.
    public var toolChoice: JSONValue?
    /// The response format (`response_format`), kept verbatim.
    public var responseFormat: JSONValue?
    /// Any other parameter that changes the answer, by its wire name (e.g. `reasoning_effort`,
    /// `max_completion_tokens`, `logprobs`). Sent upstream and part of the key, verbatim (a JSON
    /// `null` here is sent and keyed as `null`).
    ///
    /// Names in ``reservedParameterNames`` are ignored here — by ``wireBody(stream:)`` and by the
    /// key alike — use the typed property instead. (`stream`/`stream_options` are chosen per call,
    /// and `prompt_version` is the key's own field.)
    public var extra: [String: JSONValue]
    /// The end-user id (`user`), for the provider's abuse attribution only. Sent upstream, but
    /// **not** part of the cache key: different users share answers.
    public var user: String?

    /// Wire names that ``extra`` cannot set: the modelled parameters, `stream`, `stream_options`
    /// and `prompt_version`.
    public static let reservedParameterNames: Set<String> = [
        "model", "messages", "temperature", "top_p", "max_tokens", "stop", "seed", "n",
        "presence_penalty", "frequency_penalty", "logit_bias", "tools", "tool_choice",
        "response_format", "user", "stream", "stream_options", "prompt_version",
    ]

    /// Creates a request; every parameter defaults to unset.
    public init(
        model: String,
        messages: [ChatMessage],
        temperature: Double? = nil,
        topP: Double? = nil,
        maxTokens: Int? = nil,
        stop: [String]? = nil,
        seed: Int? = nil,
        n: Int? = nil,
        presencePenalty: Double? = nil,
        frequencyPenalty: Double? = nil,
        logitBias: [String: Int]? = nil,
        tools: JSONValue? = nil,
        toolChoice: JSONValue? = nil,
        responseFormat: JSONValue? = nil,
        extra: [String: JSONValue] = [:],
        user: String? = nil
    ) {
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.stop = stop
        self.seed = seed
        self.n = n
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
        self.tools = tools
        self.toolChoice = toolChoice
        self.responseFormat = responseFormat
        self.extra = extra
        self.user = user
    }

    /// Decodes an OpenAI `/chat/completions` request body.
    ///
    /// The text is parsed strictly by `JSONValue.init(parsing:)` (duplicate keys are rejected),
    /// then read by ``init(openAIBody:)``.
    ///
    /// - Throws: `JSONParseError` for invalid JSON, ``ChatRequestFormatError`` for a valid JSON
    ///   document that is not a chat request.
    public init(openAIJSON data: Data) throws {
        try self.init(openAIBody: JSONValue(parsing: data))
    }

    /// Reads an OpenAI `/chat/completions` request body.
    ///
    /// - `model` and `messages` are required; a JSON `null` for a modelled parameter means unset
    ///   (as it does for OpenAI). `stop` may be a string or an array of strings.
    /// - `user` goes to ``user``; `stream` and `stream_options` are dropped (the caller picks
    ///   streaming per call in ``wireBody(stream:)``); every other key goes to ``extra`` verbatim.
    public init(openAIBody json: JSONValue) throws(ChatRequestFormatError) {
        let fields = try OpenAIFields(json, path: "")
        let model = try fields.requiredString("model")
        guard case .array(let messageValues)? = fields.object["messages"] else {
            throw fields.error("messages", "is required and must be an array")
        }
        var messages: [ChatMessage] = []
        messages.reserveCapacity(messageValues.count)
        for (index, value) in messageValues.enumerated() {
            messages.append(try ChatMessage(openAI: value, path: "messages[\(index)]"))
        }

        var stop: [String]?
        switch fields.value("stop") {
        case nil:
            stop = nil
        case .string(let sequence)?:
            stop = [sequence]
        case .array(let values)?:
            var sequences: [String] = []
            for value in values {
                guard case .string(let sequence) = value else { throw fields.error("stop", "expected a string or an array of strings") }
                sequences.append(sequence)
            }
            stop = sequences
        case _?:
            throw fields.error("stop", "expected a string or an array of strings")
        }

        var logitBias: [String: Int]?
        if let value = fields.value("logit_bias") {
            guard case .object(let object) = value else { throw fields.error("logit_bias", "expected an object") }
            var bias: [String: Int] = [:]
            for (token, biasValue) in object {
                guard let integer = OpenAIFields.integer(biasValue) else {
                    throw ChatRequestFormatError(field: "logit_bias.\(token)", problem: "expected an integer")
                }
                bias[token] = integer
            }
            logitBias = bias
        }

        var extra: [String: JSONValue] = [:]
        for (key, value) in fields.object where !Self.reservedParameterNames.contains(key) {
            extra[key] = value
        }

        self.init(
            model: model,
            messages: messages,
            temperature: try fields.double("temperature"),
            topP: try fields.double("top_p"),
            maxTokens: try fields.int("max_tokens"),
            stop: stop,
            seed: try fields.int("seed"),
            n: try fields.int("n"),
            presencePenalty: try fields.double("presence_penalty"),
            frequencyPenalty: try fields.double("frequency_penalty"),
            logitBias: logitBias,
            tools: fields.value("tools"),
            toolChoice: fields.value("tool_choice"),
            responseFormat: fields.value("response_format"),
            extra: extra,
            user: try fields.string("user")
        )
    }

    /// The wire body for an OpenAI-compatible `/chat/completions` call.
    ///
    /// snake_case keys; unset parameters omitted; ``extra`` (minus reserved names) and ``user``
    /// included. When `stream` is true it adds `"stream": true` and
    /// `"stream_options": {"include_usage": true}` (so the final chunk reports token usage);
    /// otherwise it sends neither. Serialize it with ``JSONValue/canonicalJSON()`` (compact JSON;
    /// a non-finite double parameter would be sent as `null`).
    public func wireBody(stream: Bool) -> JSONValue {
        var object = answerParameters()
        object["messages"] = .array(messages.map(\.openAIJSON))
        if let user { object["user"] = .string(user) }
        if stream {
            object["stream"] = true
            object["stream_options"] = ["include_usage": true]
        }
        return .object(object)
    }

    /// `model`, every set answer-changing parameter and the non-reserved ``extra`` entries — the
    /// parts shared by the wire body and the cache key (messages excluded: their forms differ).
    func answerParameters() -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        for (key, value) in extra where !Self.reservedParameterNames.contains(key) {
            object[key] = value
        }
        object["model"] = .string(model)
        if let temperature { object["temperature"] = .double(temperature) }
        if let topP { object["top_p"] = .double(topP) }
        if let maxTokens { object["max_tokens"] = .int(Int64(maxTokens)) }
        if let stop { object["stop"] = .array(stop.map(JSONValue.string)) }
        if let seed { object["seed"] = .int(Int64(seed)) }
        if let n { object["n"] = .int(Int64(n)) }
        if let presencePenalty { object["presence_penalty"] = .double(presencePenalty) }
        if let frequencyPenalty { object["frequency_penalty"] = .double(frequencyPenalty) }
        if let logitBias { object["logit_bias"] = .object(logitBias.mapValues { .int(Int64($0)) }) }
        if let tools { object["tools"] = tools }
        if let toolChoice { object["tool_choice"] = toolChoice }
        if let responseFormat { object["response_format"] = responseFormat }
        return object
    }
}
