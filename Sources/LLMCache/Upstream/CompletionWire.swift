/// Reads the OpenAI chat-completions wire shapes — a whole response and a stream's
/// `chat.completion.chunk` events — with this library's JSON parser into exactly the fields the
/// cache keeps. (It replaced `JSONDecoder` with `Decodable` wire structs: on a miss that decode
/// cost more than the two Redis scripts around it.)
///
/// A field of the wrong type is an error, as it was for `JSONDecoder`; unknown fields are ignored;
/// a `null` optional field reads as absent.
package enum CompletionWire {
    /// What one stream event carries.
    struct Chunk {
        /// One `choices[]` entry's delta.
        struct Choice {
            var reasoning: String?
            var content: String?
            var toolCalls: JSONValue?
            var finishReason: String?
        }

        var id: String?
        var model: String?
        var usage: ChatCompletion.Usage?
        var choices: [Choice] = []
    }

    /// A field that is not what the wire shape says.
    struct ShapeError: Error {
        var reason: String
    }

    /// The completion in a non-streamed response body.
    /// - Throws: ``UpstreamError/malformedResponse(_:)`` when the body is not chat-completions JSON
    ///   or has no choices.
    package static func completion(_ body: [UInt8], requestedModel: String) throws(UpstreamError) -> ChatCompletion {
        do {
            var parser = JSONTextParser(bytes: body)
            guard case .object(let fields) = try parser.parseDocument() else { throw ShapeError(reason: "not an object") }
            guard case .array(let choices)? = fields["choices"] else { throw ShapeError(reason: "no choices array") }
            guard let first = choices.first else { throw UpstreamError.malformedResponse("no choices in the response") }
            let choice = try object(in: first, "choices[0]")
            let message = try optionalObject(choice["message"], "message")
            return ChatCompletion(
                id: try string(fields["id"], "id") ?? "",
                model: try string(fields["model"], "model") ?? requestedModel,
                content: try string(message?["content"], "message.content") ?? "",
                finishReason: try string(choice["finish_reason"], "finish_reason"),
                usage: try usage(fields["usage"]),
                toolCallsJSON: nonNull(message?["tool_calls"])?.canonicalJSON(),
                reasoningContent: try string(message?["reasoning_content"], "reasoning_content") ?? string(message?["reasoning"], "reasoning")
            )
        } catch let error as UpstreamError {
            throw error
        } catch {
            throw UpstreamError.malformedResponse("not chat-completions JSON: \(String(decoding: body.prefix(120), as: UTF8.self))")
        }
    }

    /// One stream event's payload (the text after `data: `).
    /// - Throws: ``ShapeError`` or `JSONParseError` when it is not a chunk.
    static func chunk(_ payload: String) throws -> Chunk {
        guard case .object(let fields) = try JSONValue(parsing: payload) else { throw ShapeError(reason: "not an object") }
        var chunk = Chunk(id: try string(fields["id"], "id"), model: try string(fields["model"], "model"), usage: try usage(fields["usage"]))
        switch fields["choices"] {
        case nil, .null?:
            break
        case .array(let choices)?:
            for entry in choices {
                let choice = try object(in: entry, "choices[]")
                let delta = try optionalObject(choice["delta"], "delta")
                chunk.choices.append(Chunk.Choice(
                    reasoning: try string(delta?["reasoning_content"], "reasoning_content") ?? string(delta?["reasoning"], "reasoning"),
                    content: try string(delta?["content"], "delta.content"),
                    toolCalls: nonNull(delta?["tool_calls"]),
                    finishReason: try string(choice["finish_reason"], "finish_reason")
                ))
            }
        default:
            throw ShapeError(reason: "choices is not an array")
        }
        return chunk
    }

    // MARK: Fields

    private static func nonNull(_ value: JSONValue?) -> JSONValue? {
        if case .null? = value { return nil }
        return value
    }

    private static func string(_ value: JSONValue?, _ name: String) throws(ShapeError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw ShapeError(reason: "\(name) is not a string")
        }
    }

    private static func object(in value: JSONValue, _ name: String) throws(ShapeError) -> [String: JSONValue] {
        guard case .object(let fields) = value else { throw ShapeError(reason: "\(name) is not an object") }
        return fields
    }

    private static func optionalObject(_ value: JSONValue?, _ name: String) throws(ShapeError) -> [String: JSONValue]? {
        switch value {
        case nil, .null?: return nil
        case .object(let fields)?: return fields
        default: throw ShapeError(reason: "\(name) is not an object")
        }
    }

    private static func count(_ value: JSONValue?, _ name: String) throws(ShapeError) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .int(let number)?:
            guard let count = Int(exactly: number) else { break }
            return count
        case .double(let number)?:
            guard let count = Int(exactly: number) else { break }
            return count
        default: break
        }
        throw ShapeError(reason: "\(name) is not an integer")
    }

    private static func usage(_ value: JSONValue?) throws(ShapeError) -> ChatCompletion.Usage? {
        guard let fields = try optionalObject(value, "usage") else { return nil }
        return ChatCompletion.Usage(
            promptTokens: try count(fields["prompt_tokens"], "usage.prompt_tokens") ?? 0,
            completionTokens: try count(fields["completion_tokens"], "usage.completion_tokens") ?? 0
        )
    }
}
