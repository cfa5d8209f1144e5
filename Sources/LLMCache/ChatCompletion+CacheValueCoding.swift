public import StampedeCache

/// A completion writes and reads its stored JSON itself: the same bytes `JSONEncoder` writes with
/// sorted keys (fields `content`, `finishReason`, `id`, `model`, `reasoningContent`,
/// `toolCallsJSON`, `usage` with `completionTokens` and `promptTokens`; a `nil` field is left
/// out), parsed back with this library's JSON parser. On the cache's hot paths this costs a fraction
/// of `JSONEncoder`/`JSONDecoder` (`stampede bench codec` measures both in one run).
extension ChatCompletion: CacheValueCoding {
    /// The stored JSON of this completion.
    public func cacheJSON() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(
            content.utf8.count + id.utf8.count + model.utf8.count + (reasoningContent?.utf8.count ?? 0)
                + (toolCallsJSON?.utf8.count ?? 0) + (finishReason?.utf8.count ?? 0) + 160
        )
        bytes.append(contentsOf: #"{"content":"#.utf8)
        JSONValue.writeCanonicalString(content, into: &bytes)
        if let finishReason {
            Self.field("finishReason", into: &bytes)
            JSONValue.writeCanonicalString(finishReason, into: &bytes)
        }
        Self.field("id", into: &bytes)
        JSONValue.writeCanonicalString(id, into: &bytes)
        Self.field("model", into: &bytes)
        JSONValue.writeCanonicalString(model, into: &bytes)
        if let reasoningContent {
            Self.field("reasoningContent", into: &bytes)
            JSONValue.writeCanonicalString(reasoningContent, into: &bytes)
        }
        if let toolCallsJSON {
            Self.field("toolCallsJSON", into: &bytes)
            JSONValue.writeCanonicalString(toolCallsJSON, into: &bytes)
        }
        if let usage {
            Self.field("usage", into: &bytes)
            bytes.append(contentsOf: "{\"completionTokens\":".utf8)
            bytes.append(contentsOf: String(usage.completionTokens).utf8)
            bytes.append(contentsOf: ",\"promptTokens\":".utf8)
            bytes.append(contentsOf: String(usage.promptTokens).utf8)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// The completion stored as `bytes`, or `nil` when they are not the shape `cacheJSON()` and
    /// `JSONEncoder` write (the cache then asks `JSONDecoder`).
    public init?(cacheJSON bytes: [UInt8]) {
        var parser = JSONTextParser(bytes: bytes)
        guard case .object(let fields)? = try? parser.parseDocument(),
              case .string(let id)? = fields["id"], case .string(let model)? = fields["model"],
              case .string(let content)? = fields["content"],
              let finishReason = Self.optionalString(fields["finishReason"]),
              let reasoningContent = Self.optionalString(fields["reasoningContent"]),
              let toolCallsJSON = Self.optionalString(fields["toolCallsJSON"])
        else { return nil }
        var usage: Usage?
        switch fields["usage"] {
        case nil, .null?:
            usage = nil
        case .object(let counts)?:
            guard case .int(let completion)? = counts["completionTokens"], case .int(let prompt)? = counts["promptTokens"],
                  let completionTokens = Int(exactly: completion), let promptTokens = Int(exactly: prompt)
            else { return nil }
            usage = Usage(promptTokens: promptTokens, completionTokens: completionTokens)
        default:
            return nil
        }
        self.init(
            id: id, model: model, content: content, finishReason: finishReason, usage: usage, toolCallsJSON: toolCallsJSON,
            reasoningContent: reasoningContent
        )
    }

    /// `,"name":`.
    private static func field(_ name: StaticString, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: #","#.utf8)
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: #"":"#.utf8)
    }

    /// An optional string field: `.some(nil)` when absent or `null`, `nil` when it holds anything
    /// but a string.
    private static func optionalString(_ value: JSONValue?) -> String?? {
        switch value {
        case nil, .null?: return .some(nil)
        case .string(let text)?: return .some(text)
        default: return nil
        }
    }
}
