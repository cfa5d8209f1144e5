/// One message of an OpenAI chat-completions conversation.
///
/// Content is always a list of parts: a plain string content (`"content": "Hi"`) is one
/// ``ContentPart/text(_:)`` part, so it is *equal* to — and gives the same cache key as —
/// `"content": [{"type": "text", "text": "Hi"}]`. A `null` or missing content (an assistant
/// message carrying only `tool_calls`) is an empty list.
///
/// `Codable` uses the OpenAI wire shape. Encoding writes a single text part as a plain string,
/// an empty content as `null`, and anything else as an array of parts. Message fields this type
/// does not model (for example `refusal` or `audio`) are dropped when decoding — from the cache
/// key *and* from the body sent upstream, so a key always describes what was actually sent.
public struct ChatMessage: Sendable, Hashable, Codable {
    /// The author of a message.
    public enum Role: String, Sendable, Hashable, Codable {
        /// Instructions from the application (older models).
        case system
        /// Instructions from the application (newer models' name for `system`).
        case developer
        /// The end user.
        case user
        /// The model, e.g. an earlier answer or a tool call.
        case assistant
        /// The result of a tool call; pairs with ``ChatMessage/toolCallID``.
        case tool
    }

    /// One part of a message's content.
    ///
    /// Wire shapes: `{"type": "text", "text": …}` and
    /// `{"type": "image_url", "image_url": {"url": …, "detail": …}}` (`detail` omitted when nil;
    /// the legacy `"image_url": "<url>"` string form is accepted when decoding). Other part types
    /// (audio, files) are not modelled and fail to decode.
    public enum ContentPart: Sendable, Hashable, Codable {
        /// Text.
        case text(String)
        /// An image by URL (`https:` or a `data:` URL), with an optional `detail` level (`low`, `high`, `auto`).
        case imageURL(String, detail: String? = nil)

        /// Decodes the OpenAI wire shape.
        public init(from decoder: any Decoder) throws {
            let json = try JSONValue(from: decoder)
            do {
                self = try ContentPart(openAI: json, path: "content part")
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
            }
        }

        /// Encodes the OpenAI wire shape.
        public func encode(to encoder: any Encoder) throws {
            try openAIJSON.encode(to: encoder)
        }

        /// The OpenAI wire shape of this part.
        var openAIJSON: JSONValue {
            switch self {
            case .text(let text):
                return ["type": "text", "text": .string(text)]
            case .imageURL(let url, let detail):
                var image: [String: JSONValue] = ["url": .string(url)]
                if let detail { image["detail"] = .string(detail) }
                return ["type": "image_url", "image_url": .object(image)]
            }
        }

        init(openAI json: JSONValue, path: String) throws(ChatRequestFormatError) {
            let fields = try OpenAIFields(json, path: path)
            switch try fields.requiredString("type") {
            case "text":
                self = .text(try fields.requiredString("text"))
            case "image_url":
                switch fields.value("image_url") {
                case .string(let url)?:
                    self = .imageURL(url)
                case let image?:
                    let imageFields = try OpenAIFields(image, path: fields.fieldPath("image_url"))
                    self = .imageURL(try imageFields.requiredString("url"), detail: try imageFields.string("detail"))
                case nil:
                    throw fields.error("image_url", "is required")
                }
            case let other:
                throw fields.error("type", "unsupported content part type \"\(other)\" (only text and image_url are modelled)")
            }
        }
    }

    /// Who wrote the message.
    public var role: Role
    /// The content parts; a plain string content is one ``ContentPart/text(_:)`` part.
    public var content: [ContentPart]
    /// The optional participant name (`name`).
    public var name: String?
    /// For a ``Role/tool`` message: the id of the call it answers (`tool_call_id`).
    public var toolCallID: String?
    /// For an ``Role/assistant`` message: its `tool_calls`, kept verbatim.
    public var toolCalls: JSONValue?

    /// Creates a message from content parts.
    public init(role: Role, content: [ContentPart], name: String? = nil, toolCallID: String? = nil, toolCalls: JSONValue? = nil) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCallID = toolCallID
        self.toolCalls = toolCalls
    }

    /// Creates a text-only message (one ``ContentPart/text(_:)`` part).
    public init(role: Role, text: String, name: String? = nil) {
        self.init(role: role, content: [.text(text)], name: name)
    }

    /// A ``Role/system`` message with `text`.
    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, text: text) }
    /// A ``Role/developer`` message with `text`.
    public static func developer(_ text: String) -> ChatMessage { ChatMessage(role: .developer, text: text) }
    /// A ``Role/user`` message with `text`.
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: .user, text: text) }
    /// An ``Role/assistant`` message with `text`.
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: .assistant, text: text) }
    /// A ``Role/tool`` message answering the tool call `callID` with `text`.
    public static func tool(_ text: String, callID: String) -> ChatMessage {
        ChatMessage(role: .tool, content: [.text(text)], toolCallID: callID)
    }

    /// Decodes the OpenAI wire shape (see the type documentation).
    public init(from decoder: any Decoder) throws {
        let json = try JSONValue(from: decoder)
        do {
            try self.init(openAI: json, path: "message")
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    /// Encodes the OpenAI wire shape (see the type documentation).
    public func encode(to encoder: any Encoder) throws {
        try openAIJSON.encode(to: encoder)
    }

    init(openAI json: JSONValue, path: String) throws(ChatRequestFormatError) {
        let fields = try OpenAIFields(json, path: path)
        let roleName = try fields.requiredString("role")
        guard let role = Role(rawValue: roleName) else {
            throw fields.error("role", "unsupported role \"\(roleName)\"")
        }
        let content: [ContentPart]
        switch fields.value("content") {
        case nil:
            content = []
        case .string(let text)?:
            content = [.text(text)]
        case .array(let parts)?:
            var decoded: [ContentPart] = []
            decoded.reserveCapacity(parts.count)
            for (index, part) in parts.enumerated() {
                decoded.append(try ContentPart(openAI: part, path: "\(fields.fieldPath("content"))[\(index)]"))
            }
            content = decoded
        case _?:
            throw fields.error("content", "expected a string, an array of parts or null")
        }
        self.init(
            role: role,
            content: content,
            name: try fields.string("name"),
            toolCallID: try fields.string("tool_call_id"),
            toolCalls: fields.value("tool_calls")
        )
    }

    /// The OpenAI wire shape: a single text part as a plain string (the most widely supported
    /// form), no content as `null`, otherwise an array of parts; nil fields omitted.
    var openAIJSON: JSONValue {
        var object: [String: JSONValue] = ["role": .string(role.rawValue)]
        switch content.count {
        case 0:
            object["content"] = .null
        case 1:
            if case .text(let text) = content[0] {
                object["content"] = .string(text)
            } else {
                object["content"] = .array([content[0].openAIJSON])
            }
        default:
            object["content"] = .array(content.map(\.openAIJSON))
        }
        addOptionalFields(to: &object)
        return .object(object)
    }

    /// The form hashed into a cache key: content always an array of parts (so string and
    /// single-part content are equal), text optionally normalised, nil fields omitted.
    func keyJSON(normalizeText: Bool) -> JSONValue {
        var object: [String: JSONValue] = ["role": .string(role.rawValue)]
        object["content"] = .array(content.map { part in
            if normalizeText, case .text(let text) = part {
                return ContentPart.text(RequestKeyOptions.normalized(text)).openAIJSON
            }
            return part.openAIJSON
        })
        addOptionalFields(to: &object)
        return .object(object)
    }

    private func addOptionalFields(to object: inout [String: JSONValue]) {
        if let name { object["name"] = .string(name) }
        if let toolCallID { object["tool_call_id"] = .string(toolCallID) }
        if let toolCalls { object["tool_calls"] = toolCalls }
    }
}
