import Foundation
@testable import LLMCache
import SimulatedLLM
import Testing

@Suite("A completion's stored JSON and the upstream wire shapes")
struct CompletionCodingTests {
    private static let pieces: [String] = [
        "a", "Z", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{1F}", "\u{7F}", "é", "→", "漢", "🙂",
        "\u{2028}", "e\u{301}", "{\"json\":[1,2]}", "0", "-1.5e3",
    ]

    private static func text(_ generator: inout SplitMix64, maxPieces: Int = 40) -> String {
        (0..<Int.random(in: 0...maxPieces, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    private static func optionalText(_ generator: inout SplitMix64) -> String? {
        Bool.random(using: &generator) ? text(&generator) : nil
    }

    private static func completion(_ generator: inout SplitMix64) -> ChatCompletion {
        ChatCompletion(
            id: text(&generator, maxPieces: 4), model: text(&generator, maxPieces: 4), content: text(&generator, maxPieces: 200),
            finishReason: optionalText(&generator),
            usage: Bool.random(using: &generator)
                ? .init(promptTokens: Int.random(in: 0...Int.max, using: &generator), completionTokens: Int.random(in: 0...1_000_000, using: &generator)) : nil,
            toolCallsJSON: optionalText(&generator), reasoningContent: optionalText(&generator)
        )
    }

    @Test("2,000 random completions: JSONDecoder reads cacheJSON() as the same value, and init(cacheJSON:) reads JSONEncoder's bytes as the same value")
    func agreesWithFoundationBothWays() throws {
        var generator = SplitMix64(seed: 20_261_129)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for index in 0..<2_000 {
            let completion = Self.completion(&generator)
            let ours = completion.cacheJSON()
            #expect(try JSONDecoder().decode(ChatCompletion.self, from: Data(ours)) == completion, "case \(index)")
            #expect(ChatCompletion(cacheJSON: Array(try encoder.encode(completion))) == completion, "case \(index)")
            #expect(ChatCompletion(cacheJSON: ours) == completion, "case \(index)")
        }
    }

    @Test("the stored bytes are sorted keys, nil fields left out, only the required escapes")
    func exactBytes() {
        let full = ChatCompletion(
            id: "c1", model: "m/1", content: "say \"hi\"\n\u{01}é", finishReason: "stop", usage: .init(promptTokens: 3, completionTokens: 5),
            toolCallsJSON: "[]", reasoningContent: "r"
        )
        #expect(String(decoding: full.cacheJSON(), as: UTF8.self)
            == #"{"content":"say \"hi\"\n\u0001é","finishReason":"stop","id":"c1","model":"m/1","reasoningContent":"r","toolCallsJSON":"[]","usage":{"completionTokens":5,"promptTokens":3}}"#)
        let bare = ChatCompletion(id: "", model: "m", content: "", finishReason: nil, usage: nil)
        #expect(String(decoding: bare.cacheJSON(), as: UTF8.self) == #"{"content":"","id":"","model":"m"}"#)
    }

    @Test("init(cacheJSON:) accepts null optionals and unknown fields, and declines anything else")
    func declinesUnusualShapes() {
        let accepted = ChatCompletion(cacheJSON: Array(#"{"content":"x","id":"i","model":"m","finishReason":null,"usage":null,"extra":[1]}"#.utf8))
        #expect(accepted == ChatCompletion(id: "i", model: "m", content: "x", finishReason: nil, usage: nil))
        for declined in [
            "", "null", "[]", #"{"content":"x","model":"m"}"#, #"{"content":1,"id":"i","model":"m"}"#,
            #"{"content":"x","id":"i","model":"m","finishReason":7}"#, #"{"content":"x","id":"i","model":"m","usage":{"promptTokens":1}}"#,
            #"{"content":"x","id":"i","model":"m","usage":{"promptTokens":1,"completionTokens":2.5}}"#,
            #"{"content":"x","id":"i","model":"m","usage":[]}"#, #"{"content":"x","id":"i","id":"j","model":"m"}"#,
            #"{"content":"x","id":"i","model":"m"} trailing"#,
        ] {
            #expect(ChatCompletion(cacheJSON: Array(declined.utf8)) == nil, "\(declined)")
        }
        #expect(ChatCompletion(cacheJSON: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) == nil)
    }

    @Test("an upstream response: nulls read as absent, tool calls keep their JSON (canonical), reasoning falls back to `reasoning`")
    func upstreamResponseFields() throws {
        let body = #"""
        {"id":"r1","object":"chat.completion","model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":null,
         "reasoning":"think","tool_calls":[{"type":"function","id":"call_1","function":{"name":"f","arguments":"{\"a\":1}"}}]},
         "finish_reason":"tool_calls","logprobs":null}],"usage":{"prompt_tokens":9,"completion_tokens":4.0,"total_tokens":13}}
        """#
        let completion = try CompletionWire.completion(Array(body.utf8), requestedModel: "asked")
        #expect(completion == ChatCompletion(
            id: "r1", model: "gpt-x", content: "", finishReason: "tool_calls", usage: .init(promptTokens: 9, completionTokens: 4),
            toolCallsJSON: #"[{"function":{"arguments":"{\"a\":1}","name":"f"},"id":"call_1","type":"function"}]"#, reasoningContent: "think"
        ))
        let minimal = try CompletionWire.completion(Array(#"{"choices":[{"message":{"content":"hi"}}]}"#.utf8), requestedModel: "asked")
        #expect(minimal == ChatCompletion(id: "", model: "asked", content: "hi", finishReason: nil, usage: nil))
    }

    @Test("an upstream response of the wrong shape is a malformed-response error naming what it got")
    func upstreamResponseErrors() {
        let cases: [(String, String)] = [
            ("not json", "not chat-completions JSON: not json"),
            (#"{"object":"list"}"#, #"not chat-completions JSON: {"object":"list"}"#),
            (#"{"choices":[]}"#, "no choices in the response"),
            (#"{"choices":[{"message":{"content":7}}]}"#, "not chat-completions JSON"),
            (#"{"id":5,"choices":[{"message":{"content":"x"}}]}"#, "not chat-completions JSON"),
            (#"{"choices":[{"message":"x"}]}"#, "not chat-completions JSON"),
            (#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":"9"}}"#, "not chat-completions JSON"),
        ]
        for (body, message) in cases {
            do {
                _ = try CompletionWire.completion(Array(body.utf8), requestedModel: "m")
                Issue.record("\(body) was accepted")
            } catch {
                guard case .malformedResponse(let detail) = error else { Issue.record("\(body): \(error)"); continue }
                #expect(detail.hasPrefix(message), "\(body): \(detail)")
            }
        }
    }

    @Test("a stream chunk: every choice's delta, usage, and tool-call deltas as JSON values")
    func streamChunk() throws {
        let chunk = try CompletionWire.chunk(#"""
        {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"He","reasoning_content":null,"tool_calls":[{"index":0,"function":{"arguments":"{"}}]},"finish_reason":null},{"delta":{"reasoning":"r"},"finish_reason":"stop"}],"usage":null}
        """#)
        #expect(chunk.id == "c")
        #expect(chunk.model == "m")
        #expect(chunk.usage == nil)
        #expect(chunk.choices.count == 2)
        #expect(chunk.choices[0].content == "He")
        #expect(chunk.choices[0].reasoning == nil)
        #expect(chunk.choices[0].toolCalls == [["index": 0, "function": ["arguments": "{"]]])
        #expect(chunk.choices[0].finishReason == nil)
        #expect(chunk.choices[1].reasoning == "r")
        #expect(chunk.choices[1].finishReason == "stop")
        let usageOnly = try CompletionWire.chunk(#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#)
        #expect(usageOnly.usage == ChatCompletion.Usage(promptTokens: 3, completionTokens: 2))
        #expect(throws: (any Error).self) { try CompletionWire.chunk(#"{"choices":{}}"#) }
        #expect(throws: (any Error).self) { try CompletionWire.chunk(#"{"choices":[{"delta":{"content":1}}]}"#) }
    }
}
