import Foundation
@testable import LLMCache
import Logging
import NIOCore
import RedisClient
@testable import StampedeProxy
import SimulatedLLM
import Testing

private let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// An upstream these tests never call (preparing a request does no I/O).
private struct UnusedUpstream: ChatCompletionUpstream {
    func complete(_ request: ChatRequest, deadline: ContinuousClock.Instant) async throws -> ChatCompletion { throw CancellationError() }
    func stream(_ request: ChatRequest, deadline: ContinuousClock.Instant, onDelta: @escaping @Sendable (ChatDelta) -> Void) async throws -> ChatCompletion {
        throw CancellationError()
    }
}

/// A cache to prepare requests with: nothing here talks to Redis.
private func llm(promptVersion: String = "v1") throws -> LLMCache {
    let redis = try RedisClient(url: "redis://127.0.0.1:1", clientName: "unused", logger: quiet)
    return try LLMCache(redis: redis, upstream: UnusedUpstream(), configuration: LLMCacheConfiguration(keyOptions: RequestKeyOptions(promptVersion: promptVersion)), logger: quiet)
}

private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

private func body(_ question: String, extra: String = "") -> String {
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" + question + "\"}]" + extra + "}"
}

@Suite("stampede serve: a repeated request body is parsed once, for its own tenant and upstream")
struct RecentChatBodiesTests {
    @Test("the same body twice is parsed once; one changed byte, another namespace or another upstream is parsed again")
    func reusedOnlyForSameBytesNamespaceAndUpstream() throws {
        let cache = try llm()
        let table = RecentChatBodies()
        let parse: (ByteBuffer) throws -> ParsedChatBody = { try ParsedChatBody(parsing: $0, for: cache) }
        let first = try table.parsed(buffer(body("Why?")), namespace: "alpha", upstream: "openai", parse: parse)
        let again = try table.parsed(buffer(body("Why?")), namespace: "alpha", upstream: "openai", parse: parse)
        var counts = table.counts
        #expect(counts.parsed == 1)
        #expect(counts.reused == 1)
        #expect(again.prepared == first.prepared)
        _ = try table.parsed(buffer(body("Why!")), namespace: "alpha", upstream: "openai", parse: parse)
        _ = try table.parsed(buffer(body("Why?")), namespace: "beta", upstream: "openai", parse: parse)
        _ = try table.parsed(buffer(body("Why?")), namespace: "alpha", upstream: "azure", parse: parse)
        // Canonically equivalent but different bytes: another namespace.
        _ = try table.parsed(buffer(body("Why?")), namespace: "caf\u{E9}", upstream: "openai", parse: parse)
        _ = try table.parsed(buffer(body("Why?")), namespace: "cafe\u{301}", upstream: "openai", parse: parse)
        counts = table.counts
        #expect(counts.parsed == 6)
        #expect(counts.reused == 1)
    }

    @Test("3,000 bodies through 512 slots, each asked twice: every answer is what parsing gives, key byte for byte")
    func everyAnswerIsTheParsedOne() throws {
        let cache = try llm()
        let table = RecentChatBodies()
        var generator = SplitMix64(seed: 42)
        var bodies: [String] = []
        for index in 0..<3_000 {
            let question = "q\(index % 700) \(Int.random(in: 0..<1_000_000, using: &generator))"
            var extra = ""
            if Bool.random(using: &generator) { extra += #","stream":true"# }
            if Bool.random(using: &generator) { extra += #","stream_options":{"include_usage":true}"# }
            if Bool.random(using: &generator) { extra += #","cache":{"no-cache":true}"# }
            if Bool.random(using: &generator) { extra += #","temperature":0.5"# }
            // Whitespace changes the bytes but not the key.
            bodies.append(Bool.random(using: &generator) ? body(question, extra: extra) : " " + body(question, extra: extra))
        }
        for text in bodies + bodies.shuffled(using: &generator) {
            let got = try table.parsed(buffer(text), namespace: "alpha", upstream: "openai") { try ParsedChatBody(parsing: $0, for: cache) }
            let expected = try ParsedChatBody(parsing: buffer(text), for: cache)
            #expect(got.prepared == expected.prepared)
            #expect(got.prepared.key?.cacheKey.utf8.elementsEqual(cache.prepare(expected.prepared.request).key?.cacheKey.utf8 ?? "".utf8) == true)
            #expect(got.stream == expected.stream)
            #expect(got.includeUsage == expected.includeUsage)
            #expect(got.cacheObject == expected.cacheObject)
        }
        let counts = table.counts
        #expect(counts.parsed + counts.reused == 6_000)
        #expect(counts.reused > 0)
    }

    @Test("bodies over 8 KiB are parsed every time; a body that fails to parse is not remembered and fails again")
    func largeAndBadBodiesAreNotRemembered() throws {
        let cache = try llm()
        let table = RecentChatBodies()
        let parse: (ByteBuffer) throws -> ParsedChatBody = { try ParsedChatBody(parsing: $0, for: cache) }
        let large = body(String(repeating: "x", count: RecentChatBodies.maximumBodyBytes))
        for _ in 0..<3 { _ = try table.parsed(buffer(large), namespace: "alpha", upstream: "openai", parse: parse) }
        #expect(table.counts.parsed == 3)
        #expect(table.counts.reused == 0)
        for _ in 0..<2 {
            #expect(throws: ProxyError.self) { try table.parsed(buffer("{\"model\":"), namespace: "alpha", upstream: "openai", parse: parse) }
            #expect(throws: ChatRequestFormatError.self) { try table.parsed(buffer("{\"model\":\"m\"}"), namespace: "alpha", upstream: "openai", parse: parse) }
        }
        #expect(table.counts.parsed == 7)
        #expect(table.counts.reused == 0)
    }

    @Test("a request prepared by one cache and answered by another is keyed with the answering cache's options")
    func preparedElsewhereIsPreparedAgain() throws {
        let first = try llm(promptVersion: "v1")
        let second = try llm(promptVersion: "v2")
        let request = ChatRequest(model: "m", messages: [.user("hi")])
        let prepared = first.prepare(request)
        #expect(prepared.key?.promptVersion == "v1")
        #expect(second.preparedHere(prepared).key?.promptVersion == "v2")
        #expect(first.preparedHere(prepared) == prepared)
        var offersTools = request
        offersTools.tools = .array([])
        let uncached = first.prepare(offersTools)
        #expect(uncached.key == nil)
        #expect(uncached.notCachedBecause == "the request offers tools")
    }
}
