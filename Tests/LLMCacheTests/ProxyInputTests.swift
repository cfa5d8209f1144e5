import Foundation
@testable import LLMCache
import StampedeCache
@testable import StampedeProxy
import Testing

/// The proxy's inputs, without a server: cache controls, virtual keys and the configuration file.
@Suite("stampede serve: cache controls, virtual keys and configuration")
struct ProxyInputTests {
    let alpha = Tenant(name: "alpha", namespace: "alpha", upstream: "sim", models: [])

    @Test("a non-streamed completion renders as OpenAI's chat.completion, byte for byte")
    func completionRendering() {
        let full = ChatCompletion(
            id: "c\"1", model: "m/1", content: "", finishReason: "tool_calls", usage: .init(promptTokens: 3, completionTokens: 5),
            toolCallsJSON: #"[{"type":"function","id":"call_1","function":{"name":"f","arguments":"{}"}}]"#, reasoningContent: "why\n"
        )
        #expect(String(decoding: CompletionJSON.completion(full, created: 1_700_000_000), as: UTF8.self) == #"{"id":"c\"1","object":"chat.completion","created":1700000000,"model":"m/1","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"why\n","tool_calls":[{"function":{"arguments":"{}","name":"f"},"id":"call_1","type":"function"}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"completion_tokens":5,"prompt_tokens":3,"total_tokens":8}}"#)
        let plain = ChatCompletion(id: "c2", model: "m", content: "héllo \u{01}", finishReason: nil, usage: nil)
        #expect(String(decoding: CompletionJSON.completion(plain, created: -1), as: UTF8.self) == #"{"id":"c2","object":"chat.completion","created":-1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"héllo \u0001"},"logprobs":null,"finish_reason":null}]}"#)
    }

    @Test("a virtual key is kept as the lower-case hex SHA-256 of its UTF-8 bytes (FIPS 180-2 vectors)")
    func virtualKeyHash() {
        #expect(VirtualKey.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(VirtualKey.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(VirtualKey.sha256Hex("sk-\u{E9}") != VirtualKey.sha256Hex("sk-e\u{301}"), "bytes, not canonical equivalence")
    }

    @Test("Cache-Control: no-cache, no-store, max-age=0 (no-cache), max-stale=N, only-if-cached; unknown directives ignored; a malformed number is a 400")
    func cacheControlHeader() throws {
        var directives = CacheDirectives()
        try directives.apply(cacheControl: "No-Store, max-stale=30, only-if-cached, stale-while-revalidate=5, community=\"x\"")
        #expect(directives.noStore && directives.onlyIfCached && !directives.noCache)
        #expect(directives.options(for: alpha).maxStale == .seconds(30))
        var revalidate = CacheDirectives()
        try revalidate.apply(cacheControl: "max-age=0")
        #expect(revalidate.options(for: alpha).noCache)
        var aged = CacheDirectives()
        try aged.apply(cacheControl: "max-age=\"600\"")
        #expect(aged.maxAge == 600 && !aged.options(for: alpha).noCache)
        for bad in ["max-age=abc", "max-age=-1", "max-stale=99999999999", "max-age"] {
            var directives = CacheDirectives()
            #expect(throws: ProxyError.self, "\(bad)") { try directives.apply(cacheControl: bad) }
        }
    }

    @Test("min-fresh and stale-if-error: parsed and passed on; max-age or min-fresh without max-stale refuses stale answers; accepts() checks age, remaining freshness, and lets a fail-safe answer through")
    func freshnessDirectives() throws {
        var directives = CacheDirectives()
        try directives.apply(cacheControl: "min-fresh=30, stale-if-error=600")
        #expect(directives.minFresh == 30 && directives.staleIfError == 600 && directives.constrainsFreshness)
        let options = directives.options(for: alpha)
        #expect(options.staleIfError == .seconds(600))
        #expect(options.maxStale == .zero, "min-fresh without max-stale: no stale answer")
        var withStale = CacheDirectives()
        try withStale.apply(cacheControl: "max-age=60, max-stale=10")
        #expect(withStale.options(for: alpha).maxStale == .seconds(10))
        #expect(CacheDirectives().options(for: alpha).maxStale == nil && CacheDirectives().options(for: alpha).staleIfError == nil)

        func result(_ source: CacheSource, age: Int, remaining: Int?) -> LLMResult {
            var result = LLMResult(completion: ChatCompletion(id: "c", model: "m", content: "x", finishReason: "stop", usage: nil), source: source, age: .seconds(age), namespace: "alpha", key: nil, notCachedBecause: nil, calledUpstream: false)
            result.remainingFreshness = remaining.map { .seconds($0) }
            return result
        }
        #expect(directives.accepts(result(.freshHit, age: 500, remaining: 30)))
        #expect(!directives.accepts(result(.freshHit, age: 1, remaining: 29)))
        #expect(!directives.accepts(result(.freshHit, age: 1, remaining: nil)))
        #expect(directives.accepts(result(.staleAfterFailure(reason: "500"), age: 900, remaining: 0)))
        var aged = CacheDirectives()
        try aged.apply(cacheControl: "max-age=60")
        #expect(aged.accepts(result(.freshHit, age: 60, remaining: 1)))
        #expect(!aged.accepts(result(.freshHit, age: 61, remaining: 100)))
        for bad in ["min-fresh", "min-fresh=-3", "stale-if-error=x"] {
            var directives = CacheDirectives()
            #expect(throws: ProxyError.self, "\(bad)") { try directives.apply(cacheControl: bad) }
        }
    }

    @Test("embeddings requests: the key holds model, input, dimensions and unknown fields, not user nor encoding_format; inputs and numbers are validated by name; stored vectors round-trip bit for bit")
    func embeddingsRequests() throws {
        let base = try EmbeddingsRequest(openAIBody: ["model": "m", "input": ["a", "b"]])
        #expect(base.inputCount == 2 && base.encodingFormat == .float)
        let sameKey = try EmbeddingsRequest(openAIBody: ["model": "m", "input": ["a", "b"], "user": "u1", "encoding_format": "base64"])
        #expect(sameKey.cacheKey == base.cacheKey && sameKey.encodingFormat == .base64 && sameKey.user == "u1")
        for different: JSONValue in [["model": "m2", "input": ["a", "b"]], ["model": "m", "input": ["b", "a"]], ["model": "m", "input": ["a", "b"], "dimensions": 4], ["model": "m", "input": ["a", "b"], "truncate": "END"]] {
            #expect(try EmbeddingsRequest(openAIBody: different).cacheKey != base.cacheKey, "\(different)")
        }
        #expect(try EmbeddingsRequest(openAIBody: ["model": "m", "input": [1, 2, 3]]).inputCount == 1)
        #expect(try EmbeddingsRequest(openAIBody: ["model": "m", "input": [[1, 2], [3]]]).inputCount == 2)
        #expect(sameKey.upstreamBody == ["model": "m", "input": ["a", "b"], "user": "u1", "encoding_format": "float"])
        let bad: [(JSONValue, String)] = [
            (["input": "x"], "model"), (["model": "m"], "input"), (["model": "m", "input": ""], "input"), (["model": "m", "input": []], "input"),
            (["model": "m", "input": [1, -1]], "input"), (["model": "m", "input": ["a", 3]], "input"), (["model": "m", "input": "x", "dimensions": 0], "dimensions"),
            (["model": "m", "input": "x", "encoding_format": "int8"], "encoding_format"), (["model": "m", "input": "x", "user": 7], "user"),
        ]
        for (body, param) in bad {
            #expect(throws: EmbeddingsRequestError.self, "\(body)") { try EmbeddingsRequest(openAIBody: body) }
            do { _ = try EmbeddingsRequest(openAIBody: body) } catch { #expect(error.param == param, "\(body)") }
        }
        let vectors: [[Float]] = [[0.1, -0.25, .leastNonzeroMagnitude, 3.4028235e38], [1]]
        let stored = try JSONEncoder().encode(EmbeddingsResponse(model: "m", vectors: vectors, promptTokens: 3))
        let decoded = try JSONDecoder().decode(EmbeddingsResponse.self, from: stored)
        #expect(decoded.vectors.map { $0.map(\.bitPattern) } == vectors.map { $0.map(\.bitPattern) } && decoded.promptTokens == 3)
    }

    @Test("pass-through: an unknown key becomes its own tenant, namespace pt- + HMAC (same key same namespace, other key or secret another), carrying the key for the upstream, redacted; virtual keys still win; no usable secret, no pass-through")
    func passThroughTenants() throws {
        let alphaConfiguration = TenantConfiguration(name: "alpha", namespace: "alpha", keySHA256: VirtualKey.sha256Hex("sk-virtual"), upstream: "sim")
        let passThrough = PassThroughConfiguration(upstream: "sim", hmacSecretEnvironment: "PT_SECRET", models: ["m1"])
        let secret = String(repeating: "s", count: 32)
        let directory = try TenantDirectory([alphaConfiguration], passThrough: passThrough, secret: secret)
        let first = try directory.authenticate(authorization: "Bearer sk-upstream-one")
        #expect(first.namespace.hasPrefix("pt-") && first.namespace.count == 35)
        #expect(first.namespace.dropFirst(3).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(!first.namespace.contains("upstream-one"))
        #expect(first.upstreamAPIKey?.value == "sk-upstream-one" && "\(first.upstreamAPIKey!)" == "<redacted>")
        #expect(first.upstream == "sim" && first.allows(model: "m1") && !first.allows(model: "m2"))
        #expect(try directory.authenticate(authorization: "Bearer sk-upstream-one").namespace == first.namespace)
        #expect(try directory.authenticate(authorization: "Bearer sk-upstream-two").namespace != first.namespace)
        let otherSecret = try TenantDirectory([alphaConfiguration], passThrough: passThrough, secret: String(repeating: "t", count: 32))
        #expect(try otherSecret.authenticate(authorization: "Bearer sk-upstream-one").namespace != first.namespace)
        let virtual = try directory.authenticate(authorization: "Bearer sk-virtual")
        #expect(virtual.namespace == "alpha" && virtual.upstreamAPIKey == nil)
        #expect(CacheDirectives().options(for: first).upstreamAPIKey?.value == "sk-upstream-one")
        #expect(throws: ProxyConfigurationError.self) { try TenantDirectory([], passThrough: passThrough, secret: "too-short") }
        #expect(throws: ProxyConfigurationError.self) { try TenantDirectory([], passThrough: passThrough, secret: nil) }
        #expect(throws: ProxyError.self) { try TenantDirectory([alphaConfiguration]).authenticate(authorization: "Bearer sk-upstream-one") }
        let unknownUpstream = ProxyConfiguration(upstreams: [UpstreamProfile(name: "sim", baseURL: "http://x", apiKeyEnvironment: nil)], tenants: [], passThrough: PassThroughConfiguration(upstream: "nope", hmacSecretEnvironment: "PT_SECRET"))
        #expect(throws: ProxyConfigurationError.self) { try unknownUpstream.validate() }
        #expect(throws: ProxyConfigurationError.self) { try ProxyConfiguration(upstreams: unknownUpstream.upstreams, tenants: []).validate() }
    }

    @Test("the body's LiteLLM-style cache object means the same; its namespace is a sub-namespace of the caller's own; wrong types are 400s")
    func cacheObject() throws {
        var directives = CacheDirectives()
        try directives.apply(cacheObject: ["no-cache": true, "ttl": 120, "namespace": "exp-1", "s-maxage": 300])
        let options = directives.options(for: alpha)
        #expect(options.noCache && options.ttl == .seconds(120) && options.namespace == "alpha.exp-1")
        #expect(directives.maxAge == 300)
        for bad: JSONValue in [["no-cache": "yes"], ["ttl": 0], ["ttl": "1"], ["namespace": "../beta"], ["namespace": "a.b"], "no-cache"] {
            var directives = CacheDirectives()
            #expect(throws: ProxyError.self, "\(bad)") { try directives.apply(cacheObject: bad) }
        }
    }

    @Test("virtual keys: SHA-256 at rest; Bearer authentication; a missing, malformed or unknown key is a 401 that never repeats the key")
    func virtualKeys() throws {
        #expect(VirtualKey.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let directory = try TenantDirectory([TenantConfiguration(name: "alpha", namespace: "alpha", keySHA256: VirtualKey.sha256Hex("sk-good"), upstream: "sim", models: ["m1"])])
        let tenant = try directory.authenticate(authorization: "Bearer sk-good")
        #expect(tenant.namespace == "alpha" && tenant.allows(model: "m1") && !tenant.allows(model: "m2"))
        #expect(try directory.authenticate(authorization: "bearer sk-good").name == "alpha")
        for header in [nil, "", "sk-good", "Basic sk-good", "Bearer ", "Bearer sk-bad"] {
            do {
                _ = try directory.authenticate(authorization: header)
                Issue.record("\(header ?? "nil") was accepted")
            } catch {
                #expect(error.status == .unauthorized)
                #expect(!error.message.contains("sk-bad") && !error.jsonBody.contains("sk-bad"))
            }
        }
    }

    @Test("the tenant table is looked up by the key's digest as four words: the configured hex in either case matches, anything not 64 hex digits matches nothing")
    func virtualKeyDigests() throws {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        #expect(VirtualKeyDigest(of: "abc") == VirtualKeyDigest(hex: abc))
        #expect(VirtualKeyDigest(of: "abc") == VirtualKeyDigest(hex: abc.uppercased()))
        #expect(VirtualKeyDigest(of: "abd") != VirtualKeyDigest(hex: abc))
        // Each byte position counts: the digest of "abc" with any one hex digit changed differs.
        for position in 0..<64 {
            var digits = Array(abc)
            digits[position] = digits[position] == "0" ? "1" : "0"
            #expect(VirtualKeyDigest(hex: String(digits)) != VirtualKeyDigest(of: "abc"), "digit \(position)")
        }
        for bad in ["", String(abc.dropLast()), abc + "0", String(abc.dropLast()) + "g", String(abc.dropLast()) + "\u{E9}"] {
            #expect(VirtualKeyDigest(hex: bad) == nil, "\(bad)")
        }
        let upper = try TenantDirectory([TenantConfiguration(name: "alpha", namespace: "alpha", keySHA256: VirtualKey.sha256Hex("sk-good").uppercased(), upstream: "sim")])
        #expect(try upper.authenticate(authorization: "Bearer sk-good").name == "alpha")
        let malformed = try TenantDirectory([TenantConfiguration(name: "alpha", namespace: "alpha", keySHA256: "not-a-hash", upstream: "sim")])
        #expect(throws: ProxyError.self) { try malformed.authenticate(authorization: "Bearer not-a-hash") }
    }

    @Test("the configuration file: unknown settings, an unknown upstream, a namespace with '.', a bad hash and a duplicate key are refused by name")
    func configurationValidation() throws {
        let hash = VirtualKey.sha256Hex("k")
        let good = #"{"upstreams":[{"name":"sim","base_url":"http://127.0.0.1:1/v1","api_key_env":"SIM_KEY"}],"tenants":[{"name":"a","namespace":"a","key_sha256":"\#(hash)","upstream":"sim"}]}"#
        let decoded = try JSONDecoder().decode(ProxyConfiguration.self, from: Data(good.utf8))
        try decoded.validate()
        #expect(decoded.maxBodyBytes == 1 << 20)
        func problem(_ json: String) -> String? {
            do {
                try JSONDecoder().decode(ProxyConfiguration.self, from: Data(json.utf8)).validate()
                return nil
            } catch let error as ProxyConfigurationError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        #expect(problem(good.replacingOccurrences(of: #""tenants""#, with: #""tenantz":[],"tenants""#))?.contains("unknown setting 'tenantz'") == true)
        #expect(problem(good.replacingOccurrences(of: #""upstream":"sim""#, with: #""upstream":"other""#))?.contains("names upstream 'other'") == true)
        #expect(problem(good.replacingOccurrences(of: #""namespace":"a""#, with: #""namespace":"a.b""#))?.contains("no '.'") == true)
        #expect(problem(good.replacingOccurrences(of: hash, with: "abc"))?.contains("64 hex characters") == true)
        #expect(problem(good.replacingOccurrences(of: #""http://127.0.0.1:1/v1""#, with: #""ftp://x""#))?.contains("http://") == true)
        let twice = good.replacingOccurrences(of: #"}]}"#, with: #"},{"name":"b","namespace":"b","key_sha256":"\#(hash)","upstream":"sim"}]}"#)
        #expect(problem(twice)?.contains("same key_sha256") == true)
        // The near-cache settings: read, turned into the library's configuration, bad ones named.
        let withNear = good.replacingOccurrences(of: #""tenants""#, with: #""near_cache":{"max_entries":500,"max_bytes":1048576,"admission":"lru"},"tenants""#)
        let near = try #require(try JSONDecoder().decode(ProxyConfiguration.self, from: Data(withNear.utf8)).nearCache?.configuration())
        #expect(near == NearCacheConfiguration(maxEntries: 500, maxBytes: 1 << 20, admission: .always))
        #expect(problem(withNear.replacingOccurrences(of: #""lru""#, with: #""lfu""#))?.contains("'near_cache.admission'") == true)
        #expect(problem(withNear.replacingOccurrences(of: #""max_entries":500"#, with: #""max_entries":0"#))?.contains("nearCache.maxEntries") == true)
        // Committing in the background: off unless set, a JSON boolean only.
        #expect(decoded.commitInBackground == false)
        let inBackground = good.replacingOccurrences(of: #""tenants""#, with: #""commit_in_background":true,"tenants""#)
        #expect(try JSONDecoder().decode(ProxyConfiguration.self, from: Data(inBackground.utf8)).commitInBackground == true)
        #expect(problem(inBackground.replacingOccurrences(of: "true", with: #""yes""#)) != nil)
    }
}
