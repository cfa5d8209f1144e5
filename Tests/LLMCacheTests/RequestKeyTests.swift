import Foundation
import Testing
@testable import LLMCache

@Suite("Request keys")
struct RequestKeyTests {
    static let base = ChatRequest(
        model: "gpt-4o-mini",
        messages: [.system("You are terse."), .user("What is the capital of France?")]
    )

    static func request(_ json: String) throws -> ChatRequest {
        try ChatRequest(openAIJSON: Data(json.utf8))
    }

    // MARK: Equality

    @Test func keyIgnoresJSONKeyOrderWhitespaceAndContentForm() throws {
        let a = try Self.request(#"""
        {"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"response_format":{"type":"json_object","strict":true},"max_tokens":50}
        """#)
        let b = try Self.request(#"""
        {
          "max_tokens" : 50,
          "response_format" : { "strict" : true, "type" : "json_object" },
          "messages" : [
            { "content" : [ { "text" : "Be brief.", "type" : "text" } ], "role" : "system" },
            { "content" : [ { "type" : "text", "text" : "Hi" } ], "role" : "user" }
          ],
          "temperature" : 0.2,
          "model" : "gpt-4o-mini"
        }
        """#)
        #expect(a == b)
        #expect(a.canonicalJSON() == b.canonicalJSON())
        #expect(a.cacheKey() == b.cacheKey())
        let built = ChatRequest(
            model: "gpt-4o-mini",
            messages: [.system("Be brief."), ChatMessage(role: .user, content: [.text("Hi")])],
            temperature: 0.2,
            maxTokens: 50,
            responseFormat: ["type": "json_object", "strict": true]
        )
        #expect(built.cacheKey() == a.cacheKey())
    }

    @Test func everyAnswerChangingParameterChangesTheKey() {
        let mutations: [(String, (inout ChatRequest) -> Void)] = [
            ("temperature", { $0.temperature = 0.5 }),
            ("top_p", { $0.topP = 0.9 }),
            ("max_tokens", { $0.maxTokens = 100 }),
            ("stop", { $0.stop = ["\n"] }),
            ("seed", { $0.seed = 42 }),
            ("n", { $0.n = 2 }),
            ("presence_penalty", { $0.presencePenalty = 0.1 }),
            ("frequency_penalty", { $0.frequencyPenalty = 0.1 }),
            ("logit_bias", { $0.logitBias = ["50256": -100] }),
            ("tools", { $0.tools = [["type": "function", "function": ["name": "lookup"]]] }),
            ("tool_choice", { $0.toolChoice = "auto" }),
            ("response_format", { $0.responseFormat = ["type": "json_object"] }),
            ("extra", { $0.extra["reasoning_effort"] = "high" }),
            ("model", { $0.model = "gpt-4o" }),
            ("role", { $0.messages[0].role = .developer }),
            ("text", { $0.messages[1].content = [.text("What is the capital of Italy?")] }),
            ("order", { $0.messages.reverse() }),
            ("name", { $0.messages[1].name = "alice" }),
            ("image", { $0.messages[1].content.append(.imageURL("https://example.com/a.png")) }),
        ]
        let baseKey = Self.base.cacheKey()
        var seen: [String: String] = [baseKey.cacheKey: "base"]
        for (label, mutate) in mutations {
            var changed = Self.base
            mutate(&changed)
            let key = changed.cacheKey().cacheKey
            #expect(key != baseKey.cacheKey, "\(label) did not change the key")
            #expect(seen[key] == nil, "\(label) collides with \(seen[key] ?? "")")
            seen[key] = label
        }
        // The prompt version changes the key.
        let v2 = Self.base.cacheKey(options: RequestKeyOptions(promptVersion: "v2"))
        #expect(v2.hash != baseKey.hash)
        #expect(v2.cacheKey != baseKey.cacheKey)
        // `user` is attribution only.
        var withUser = Self.base
        withUser.user = "user-1234"
        #expect(withUser.cacheKey() == baseKey)
        #expect(!withUser.canonicalJSON().contains("user-1234"))
    }

    @Test("bookkeeping fields and per-request ids are sent upstream but not keyed; any other unknown field is keyed; the list is configurable")
    func unknownFieldsAreKeyedOnlyWhenTheyCanChangeTheAnswer() throws {
        let plain = try Self.request(#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#)
        let bookkeeping = try Self.request(#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"metadata":{"trace":"7"},"store":true,"request_id":"r-123","id":"abc","service_tier":"flex","prompt_cache_key":"k","safety_identifier":"s"}"#)
        #expect(bookkeeping.cacheKey() == plain.cacheKey())
        #expect(bookkeeping.wireBody(stream: false).canonicalJSON().contains(#""request_id":"r-123""#), "still sent upstream")
        let reasoning = try Self.request(#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"high"}"#)
        #expect(reasoning.cacheKey() != plain.cacheKey())
        let strict = RequestKeyOptions(unkeyedFields: [])
        #expect(bookkeeping.cacheKey(options: strict) != plain.cacheKey(options: strict))
    }

    @Test func unsetParameterDiffersFromExplicitDefault() {
        var explicit = Self.base
        explicit.temperature = 1
        #expect(explicit.cacheKey() != Self.base.cacheKey())
        var explicitN = Self.base
        explicitN.n = 1
        #expect(explicitN.cacheKey() != Self.base.cacheKey())
    }

    @Test func typedParameterEqualsSameValueFromJSON() throws {
        let decoded = try Self.request(#"""
        {"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}],
         "stop":"END","seed":7,"reasoning_effort":"low","user":"u1","stream":true,"stream_options":{"include_usage":false}}
        """#)
        var built = Self.base
        built.stop = ["END"]
        built.seed = 7
        built.extra = ["reasoning_effort": "low"]
        #expect(decoded.cacheKey() == built.cacheKey())
        #expect(decoded.user == "u1")
        #expect(decoded.extra == ["reasoning_effort": "low"])
    }

    @Test func numbersAreNormalised() throws {
        func key(_ temperature: String) throws -> RequestKey {
            try Self.request(#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":\#(temperature),"metadata_level":\#(temperature)}"#).cacheKey()
        }
        #expect(try key("0.7") == key("0.70"))
        #expect(try key("0.7") == key("7e-1"))
        #expect(try key("0.7") == key("7.0E-1"))
        #expect(try key("1") == key("1.0"))
        #expect(try key("1") == key("1e0"))
        #expect(try key("0.7") != key("0.71"))
        var a = Self.base
        a.extra["x"] = .int(1)
        var b = Self.base
        b.extra["x"] = .double(1.0)
        #expect(a.cacheKey() == b.cacheKey())
    }

    // MARK: Text normalisation

    @Test func textNormalisationIsOptIn() {
        let doubleSpace = ChatRequest(model: "m", messages: [.user("Hi  there")])
        let singleSpace = ChatRequest(model: "m", messages: [.user("Hi there")])
        let ragged = ChatRequest(model: "m", messages: [.user("  Hi\n\t there \n")])
        let composed = ChatRequest(model: "m", messages: [.user("caf\u{E9}")])
        let decomposed = ChatRequest(model: "m", messages: [.user("cafe\u{301}")])

        #expect(doubleSpace.cacheKey() != singleSpace.cacheKey())
        #expect(ragged.cacheKey() != singleSpace.cacheKey())
        #expect(composed.cacheKey() != decomposed.cacheKey())

        let on = RequestKeyOptions(normalizeText: true)
        #expect(doubleSpace.cacheKey(options: on) == singleSpace.cacheKey(options: on))
        #expect(ragged.cacheKey(options: on) == singleSpace.cacheKey(options: on))
        #expect(composed.cacheKey(options: on) == decomposed.cacheKey(options: on))
        // Normalisation is a different key space from no normalisation only when text changes.
        #expect(singleSpace.cacheKey(options: on) == singleSpace.cacheKey())
        // The wire body is never normalised.
        #expect(doubleSpace.wireBody(stream: false).canonicalJSON().contains("Hi  there"))
    }

    // MARK: Golden vectors

    static let golden: [(ChatRequest, String, String)] = [
        (
            ChatRequest(model: "gpt-4o-mini", messages: [.user("Hello")]),
            #"{"messages":[{"content":[{"text":"Hello","type":"text"}],"role":"user"}],"model":"gpt-4o-mini","prompt_version":"v1"}"#,
            "c4c41ca26e540c3c92f1780c5e97c70981cda434d2d506b3866a2a9d628dad07"
        ),
        (
            ChatRequest(
                model: "gpt-4o",
                messages: [.system("You are a helpful assistant."), .user("Translate \"café\" to English.\nThanks!")],
                temperature: 0.7,
                maxTokens: 256,
                stop: ["\n\n", "END"],
                seed: 42,
                user: "not-in-key"
            ),
            #"{"max_tokens":256,"messages":[{"content":[{"text":"You are a helpful assistant.","type":"text"}],"role":"system"},{"content":[{"text":"Translate \"café\" to English.\nThanks!","type":"text"}],"role":"user"}],"model":"gpt-4o","prompt_version":"v1","seed":42,"stop":["\n\n","END"],"temperature":0.7}"#,
            "fe586e8136d1b7b2f21beafa4e32fe71dd6f46235f5ccb8dede3d054276ea92f"
        ),
        (
            ChatRequest(
                model: "ft:gpt-4o-mini:acme::abc123",
                messages: [
                    ChatMessage(role: .user, content: [.text("What is in this image?"), .imageURL("https://example.com/cat.png", detail: "low")]),
                    ChatMessage(role: .assistant, content: [], toolCalls: [["id": "call_1", "type": "function", "function": ["name": "lookup", "arguments": "{\"q\":\"cat\"}"]]]),
                    .tool("{\"result\":\"tabby\"}", callID: "call_1"),
                ],
                topP: 0.95,
                presencePenalty: -0.5,
                frequencyPenalty: 1e-7,
                logitBias: ["50256": -100, "1234": 5],
                tools: [["type": "function", "function": ["name": "lookup", "parameters": ["type": "object", "properties": ["q": ["type": "string"]]]]]],
                toolChoice: "auto",
                responseFormat: ["type": "text"],
                extra: ["reasoning_effort": "medium", "logprobs": true, "top_logprobs": 3]
            ),
            #"{"frequency_penalty":1e-7,"logit_bias":{"1234":5,"50256":-100},"logprobs":true,"messages":[{"content":[{"text":"What is in this image?","type":"text"},{"image_url":{"detail":"low","url":"https://example.com/cat.png"},"type":"image_url"}],"role":"user"},{"content":[],"role":"assistant","tool_calls":[{"function":{"arguments":"{\"q\":\"cat\"}","name":"lookup"},"id":"call_1","type":"function"}]},{"content":[{"text":"{\"result\":\"tabby\"}","type":"text"}],"role":"tool","tool_call_id":"call_1"}],"model":"ft:gpt-4o-mini:acme::abc123","presence_penalty":-0.5,"prompt_version":"v1","reasoning_effort":"medium","response_format":{"type":"text"},"tool_choice":"auto","tools":[{"function":{"name":"lookup","parameters":{"properties":{"q":{"type":"string"}},"type":"object"}},"type":"function"}],"top_logprobs":3,"top_p":0.95}"#,
            "5fdf998513180a30550b6f3e66805e2232f4d2cd619267d9457c57a2dcf20272"
        ),
    ]

    /// Hashes verified independently: `printf '%s' '<canonical json>' | sha256sum`, and the canonical
    /// JSON re-derived with Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
    @Test func goldenVectors() {
        for (request, json, hash) in Self.golden {
            let key = request.cacheKey(options: RequestKeyOptions(promptVersion: "v1"))
            #expect(request.canonicalJSON() == json)
            #expect(key.hash == hash)
            #expect(key.hash.count == 64)
        }
    }

    // MARK: Privacy and escaping

    @Test func promptTextNeverAppearsInTheKey() {
        let secret = "my-secret-diagnosis-XYZZY"
        let request = ChatRequest(model: "gpt-4o", messages: [.system("Doctor mode."), .user(secret)], user: "patient-7")
        let key = request.cacheKey()
        #expect(!key.cacheKey.contains(secret))
        #expect(!key.cacheKey.contains("Doctor"))
        #expect(!key.description.contains(secret))
        #expect(!key.cacheKey.contains("patient-7"))
        #expect(key.cacheKey == "gpt-4o:v1:\(key.hash)")
        #expect(key.hash.allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test func modelAndVersionAreEscaped() {
        let request = ChatRequest(model: "my {model}|x y%", messages: [.user("q")])
        let key = request.cacheKey(options: RequestKeyOptions(promptVersion: "2024:a b\t"))
        #expect(key.model == "my {model}|x y%")
        #expect(key.cacheKey == "my%20%7Bmodel%7D%7Cx%20y%25:2024%3Aa%20b%09:\(key.hash)")
        let fineTuned = ChatRequest(model: "ft:gpt-4o:org::id", messages: [.user("q")]).cacheKey()
        #expect(fineTuned.cacheKey == "ft:gpt-4o:org::id:v1:\(fineTuned.hash)")
        let nbsp = RequestKey(model: "a\u{A0}b", promptVersion: "v1", hash: "h")
        #expect(nbsp.cacheKey == "a%C2%A0b:v1:h")
    }

    // MARK: Canonical JSON

    @Test func canonicalEscapingAndNumbers() {
        let value: JSONValue = [
            "z": "quote\" backslash\\ slash/ \u{8}\u{C}\n\r\t \u{0}\u{1F}\u{7F} é 😀",
            "a": [1.0, -0.0, 0.5, 1e-7, 1.5e20, 123456.789, 9_007_199_254_740_992.0, 1_152_921_504_606_846_976.0, -2.5e-10, 1e300],
            "é": .int(9_223_372_036_854_775_807),
            "B": [true, false, nil, .int(-3), .double(.nan), .double(-.infinity)],
            "aa": [:],
            "": [],
        ]
        let expected = #"{"":[],"B":[true,false,null,-3,null,null],"a":[1,0,0.5,1e-7,1.5e20,123456.789,9007199254740992,1.152921504606847e18,-2.5e-10,1e300],"aa":{},"z":"quote\" backslash\\ slash/ \b\f\n\r\t \u0000\u001f"# + "\u{7F} é 😀\"," + #""é":9223372036854775807}"#
        #expect(value.canonicalJSON() == expected)
    }

    @Test func canonicalKeyOrderIsByUTF8Bytes() {
        // U+FF21 (fullwidth A, EF BC A1) sorts after U+00E9 (C3 A9) and U+1F600 (F0 9F 98 80) after both.
        let value: JSONValue = ["\u{1F600}": 1, "\u{FF21}": 2, "\u{E9}": 3, "Z": 4, "a": 5]
        #expect(value.canonicalJSON() == "{\"Z\":4,\"a\":5,\"\u{E9}\":3,\"\u{FF21}\":2,\"\u{1F600}\":1}")
    }

    @Test func jsonValueEqualityFollowsCanonicalForm() {
        #expect(JSONValue.int(1) == .double(1.0))
        #expect(JSONValue.double(-0.0) == .int(0))
        #expect(JSONValue.double(0.5) != .int(0))
        #expect(JSONValue.string("caf\u{E9}") != .string("cafe\u{301}"))
        #expect(JSONValue.double(9_007_199_254_740_992.0) != .int(9_007_199_254_740_992))
        let values: [JSONValue] = [.int(1), .double(1.0), ["a": 1, "b": 2.0], ["b": 2, "a": 1.0]]
        #expect(Set(values).count == 2)
    }

    // MARK: Parsing and Codable

    @Test func parserKeepsNumbersExactly() throws {
        #expect(try JSONValue(parsing: "1") == .int(1))
        if case .double = try JSONValue(parsing: "1.0") {} else { Issue.record("1.0 should parse as a double") }
        if case .int(let big) = try JSONValue(parsing: "9223372036854775807") { #expect(big == .max) } else { Issue.record("Int64.max") }
        if case .double = try JSONValue(parsing: "9223372036854775808") {} else { Issue.record("beyond Int64 should be a double") }
        #expect(try JSONValue(parsing: #""\ud83d\ude00 \u00e9\/""#) == .string("😀 é/"))
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: #"{"a":1,"a":2}"#) }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: "1e999") }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: "01") }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: #""\ud83d""#) }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: "[1,]") }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Data([0x22, 0xFF, 0x22])) }
        // Integers are read without text up to 18 characters, through Int64's parser beyond.
        for text in ["0", "-0", "7", "-7", "999999999999999999", "-99999999999999999", "1000000000000000000", "-999999999999999999", "-9223372036854775808"] {
            #expect(try JSONValue(parsing: text) == .int(Int64(text)!), "\(text)")
        }
        // Invalid UTF-8 is rejected with and without escapes in the same string; escaped non-ASCII is kept.
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Data([0x22, 0x5C, 0x6E, 0xC3, 0x22])) }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: Data([0x22, 0x61, 0xED, 0xA0, 0x80, 0x22])) }
        #expect(try JSONValue(parsing: Data(#""a\u00e9\n""#.utf8)) == .string("aé\n"))
        #expect(try JSONValue(parsing: Data([0x22, 0xC3, 0xA9, 0x5C, 0x74, 0x22])) == .string("é\t"))
    }

    @Test func codableRoundTrips() throws {
        let value: JSONValue = ["s": "x\ny", "i": .int(-9_223_372_036_854_775_808), "d": 0.1, "big": 1.5e20, "b": true, "n": nil, "a": [1, "two", [3.25]], "o": ["k": [:]]]
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
        #expect(try JSONValue(parsing: data) == value)
        #expect(try JSONValue(parsing: value.canonicalJSON()) == value)

        let messages: [ChatMessage] = [
            .user("plain"),
            ChatMessage(role: .user, content: [.text("a"), .imageURL("https://x/y.png", detail: "high")], name: "n"),
            ChatMessage(role: .assistant, content: [], toolCalls: [["id": "c1"]]),
            .tool("result", callID: "c1"),
        ]
        let encoded = try JSONEncoder().encode(messages)
        #expect(try JSONDecoder().decode([ChatMessage].self, from: encoded) == messages)
    }

    @Test func wireBody() throws {
        var request = Self.base
        request.temperature = 0.3
        request.user = "u"
        request.extra = ["reasoning_effort": "low", "stream": false, "temperature": 2]
        let plain = request.wireBody(stream: false)
        #expect(plain == [
            "model": "gpt-4o-mini",
            "messages": [["role": "system", "content": "You are terse."], ["role": "user", "content": "What is the capital of France?"]],
            "temperature": 0.3,
            "user": "u",
            "reasoning_effort": "low",
        ])
        guard case .object(let streaming) = request.wireBody(stream: true) else { Issue.record("not an object"); return }
        #expect(streaming["stream"] == true)
        #expect(streaming["stream_options"] == ["include_usage": true])
        // The wire body reads back as the same request.
        let reread = try ChatRequest(openAIJSON: Data(request.wireBody(stream: true).canonicalJSON().utf8))
        #expect(reread.cacheKey() == request.cacheKey())
    }

    @Test func malformedRequestsAreRejected() {
        #expect(throws: ChatRequestFormatError.self) { try Self.request(#"{"messages":[]}"#) }
        #expect(throws: ChatRequestFormatError.self) { try Self.request(#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#) }
        #expect(throws: ChatRequestFormatError.self) { try Self.request(#"{"model":"m","messages":[],"max_tokens":1.5}"#) }
        #expect(throws: ChatRequestFormatError.self) { try Self.request(#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}"#) }
    }
}
