import Foundation
import LLMCache

/// Renders completions in OpenAI's `/chat/completions` wire shapes: one `chat.completion` object,
/// or the `chat.completion.chunk` objects of a server-sent-events stream.
enum CompletionJSON {
    /// The non-streamed response body, written byte by byte into one buffer (a hit's body is built
    /// on every request: a sorted `JSONValue` tree cost about 6% of a hit's CPU, and joining
    /// `String`s about 5%).
    static func completion(_ completion: ChatCompletion, created: Int64) -> [UInt8] {
        var toolCalls: JSONValue?
        if let raw = completion.toolCallsJSON, let parsed = try? JSONValue(parsing: raw) { toolCalls = parsed }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(
            completion.content.utf8.count + (completion.reasoningContent?.utf8.count ?? 0) + (completion.toolCallsJSON?.utf8.count ?? 0)
                + completion.id.utf8.count + completion.model.utf8.count + 320
        )
        bytes.append(contentsOf: #"{"id":"#.utf8)
        JSONValue.writeCanonicalString(completion.id, into: &bytes)
        bytes.append(contentsOf: #","object":"chat.completion","created":"#.utf8)
        bytes.append(contentsOf: String(created).utf8)
        bytes.append(contentsOf: #","model":"#.utf8)
        JSONValue.writeCanonicalString(completion.model, into: &bytes)
        bytes.append(contentsOf: #","choices":[{"index":0,"message":{"role":"assistant","content":"#.utf8)
        if completion.content.isEmpty && toolCalls != nil {
            bytes.append(contentsOf: "null".utf8)
        } else {
            JSONValue.writeCanonicalString(completion.content, into: &bytes)
        }
        if let reasoning = completion.reasoningContent {
            bytes.append(contentsOf: #","reasoning_content":"#.utf8)
            JSONValue.writeCanonicalString(reasoning, into: &bytes)
        }
        if let toolCalls {
            bytes.append(contentsOf: #","tool_calls":"#.utf8)
            toolCalls.writeCanonical(into: &bytes)
        }
        bytes.append(contentsOf: #"},"logprobs":null,"finish_reason":"#.utf8)
        if let reason = completion.finishReason {
            JSONValue.writeCanonicalString(reason, into: &bytes)
        } else {
            bytes.append(contentsOf: "null".utf8)
        }
        bytes.append(contentsOf: "}]".utf8)
        if let usage = completion.usage {
            bytes.append(contentsOf: #","usage":{"completion_tokens":"#.utf8)
            bytes.append(contentsOf: String(usage.completionTokens).utf8)
            bytes.append(contentsOf: #","prompt_tokens":"#.utf8)
            bytes.append(contentsOf: String(usage.promptTokens).utf8)
            bytes.append(contentsOf: #","total_tokens":"#.utf8)
            bytes.append(contentsOf: String(usage.totalTokens).utf8)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// One streamed chunk carrying a piece of `content`, or of `reasoning_content` (the first chunk
    /// also carries the role).
    static func deltaChunk(id: String, model: String, created: Int64, content: String, reasoning: Bool = false, first: Bool) -> String {
        var delta: [String: JSONValue] = [reasoning ? "reasoning_content" : "content": .string(content)]
        if first { delta["role"] = "assistant" }
        return chunk(id: id, model: model, created: created, choices: [.object(["index": 0, "delta": .object(delta), "finish_reason": .null])])
    }

    /// The chunk that ends the choice: its finish reason, if any the tool calls, the role when no
    /// chunk came before it (`first`), and `extra` top-level fields (the proxy's `stampede` report).
    static func finishChunk(_ completion: ChatCompletion, created: Int64, first: Bool = false, extra: [String: JSONValue] = [:]) -> String {
        var delta: [String: JSONValue] = first ? ["role": "assistant"] : [:]
        if let toolCalls = completion.toolCallsJSON, case .array(let calls)? = try? JSONValue(parsing: toolCalls) {
            // Streamed tool calls carry their position in the list.
            delta["tool_calls"] = .array(calls.enumerated().map { index, call in
                guard case .object(var fields) = call else { return call }
                fields["index"] = .int(Int64(index))
                return .object(fields)
            })
        }
        return chunk(id: completion.id, model: completion.model, created: created, choices: [.object([
            "index": 0, "delta": .object(delta), "finish_reason": completion.finishReason.map(JSONValue.string) ?? "stop",
        ])], extra: extra)
    }

    /// The usage chunk OpenAI sends last when `stream_options.include_usage` is set (no choices).
    static func usageChunk(_ completion: ChatCompletion, created: Int64) -> String? {
        guard let usage = completion.usage else { return nil }
        return JSONValue.object([
            "id": .string(completion.id), "object": "chat.completion.chunk", "created": .int(created), "model": .string(completion.model),
            "choices": [], "usage": usageJSON(usage),
        ]).canonicalJSON()
    }

    private static func chunk(id: String, model: String, created: Int64, choices: [JSONValue], extra: [String: JSONValue] = [:]) -> String {
        var fields: [String: JSONValue] = [
            "id": .string(id), "object": "chat.completion.chunk", "created": .int(created), "model": .string(model), "choices": .array(choices),
        ]
        fields.merge(extra) { current, _ in current }
        return JSONValue.object(fields).canonicalJSON()
    }

    private static func usageJSON(_ usage: ChatCompletion.Usage) -> JSONValue {
        .object([
            "prompt_tokens": .int(Int64(usage.promptTokens)), "completion_tokens": .int(Int64(usage.completionTokens)),
            "total_tokens": .int(Int64(usage.totalTokens)),
        ])
    }

    /// Splits a stored answer into stream pieces of at most `limit` characters, cut after a space
    /// where one is near, so a replayed hit streams like an answer rather than arriving as one block.
    static func pieces(of text: String, limit: Int = 24) -> [String] {
        guard text.count > limit else { return text.isEmpty ? [] : [text] }
        var pieces: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if current.count >= limit || (character == " " && current.count >= limit / 2) {
                pieces.append(current)
                current = ""
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }
}
