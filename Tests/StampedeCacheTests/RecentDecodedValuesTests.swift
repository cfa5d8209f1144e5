import Foundation
import RedisClient
import RedisTestSupport
@testable import StampedeCache
import Testing

/// A value with its own JSON coding (``CacheValueCoding``), as the LLM completion has.
private struct Answer: CacheValueCoding, Equatable {
    var text: String
    var tokens: Int

    func cacheJSON() -> [UInt8] { Array(#"{"text":"\#(text)","tokens":\#(tokens)}"#.utf8) }

    init(text: String, tokens: Int) {
        self.text = text
        self.tokens = tokens
    }

    init?(cacheJSON bytes: [UInt8]) {
        guard let decoded = try? JSONDecoder().decode(Plain.self, from: Data(bytes)) else { return nil }
        self.init(text: decoded.text, tokens: decoded.tokens)
    }
}

/// The same fields without the conformance: decoded by `JSONDecoder` every time.
private struct Plain: Codable, Equatable {
    var text: String
    var tokens: Int
}

/// A class with the conformance: never shared between callers.
private final class Boxed: CacheValueCoding {
    let text: String
    init(text: String) { self.text = text }
    func cacheJSON() -> [UInt8] { Array(#"{"text":"\#(text)"}"#.utf8) }
    init?(cacheJSON bytes: [UInt8]) {
        guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(bytes)), let text = decoded["text"] else { return nil }
        self.text = text
    }
}

@Suite("StampedeCache: a hot key's value is decoded once per stored bytes", .sharedRedis)
struct RecentDecodedValuesTests {
    @Test("one miss and 20 hits decode once; a new value stored by another worker is decoded once more and read back exactly")
    func hitsDecodeOncePerStoredBytes() async throws {
        let url = try TestRedis.sharedURL
        let namespace = uniqueNamespace()
        let worker = try await Worker.start(url, namespace: namespace, policy: testPolicy(), backgroundLoop: false)
        let other = try await Worker.start(url, namespace: namespace, policy: testPolicy(), backgroundLoop: false)
        let cache = worker.cache
        let first = Answer(text: "one", tokens: 1)
        _ = try await cache.value(for: "q", as: Answer.self) { first }
        for _ in 0..<20 {
            let hit = try await cache.value(for: "q", as: Answer.self) { Answer(text: "never", tokens: 0) }
            #expect(hit.value == first)
            #expect(hit.source == .freshHit)
        }
        #expect(cache.recentValues.decodeCount == 1)
        // Another worker replaces the value: the bytes differ, so the next read decodes them.
        let second = Answer(text: "two", tokens: 2)
        _ = try await other.cache.value(for: "q", as: Answer.self, options: CacheRequestOptions(forceRefresh: true)) { second }
        for _ in 0..<5 {
            let read = try await cache.value(for: "q", as: Answer.self) { Answer(text: "never", tokens: 0) }
            #expect(read.value == second)
        }
        let fresh = try #require(try await cache.freshValue(for: "q", as: Answer.self))
        #expect(fresh.value == second)
        #expect(cache.recentValues.decodeCount == 2)
        await other.stop()
        await worker.stop()
    }

    @Test("types without the conformance, classes and entries over 16 KiB are decoded on every read")
    func otherValuesAreDecodedEveryTime() async throws {
        let url = try TestRedis.sharedURL
        let worker = try await Worker.start(url, namespace: uniqueNamespace(), policy: testPolicy(), backgroundLoop: false)
        let cache = worker.cache
        _ = try await cache.value(for: "plain", as: Plain.self) { Plain(text: "p", tokens: 3) }
        for _ in 0..<3 { #expect(try await cache.value(for: "plain", as: Plain.self) { Plain(text: "x", tokens: 0) }.value == Plain(text: "p", tokens: 3)) }
        #expect(cache.recentValues.decodeCount == 4)
        _ = try await cache.value(for: "boxed", as: Boxed.self) { Boxed(text: "b") }
        let boxes = try await [cache.value(for: "boxed", as: Boxed.self) { Boxed(text: "x") }.value, cache.value(for: "boxed", as: Boxed.self) { Boxed(text: "x") }.value]
        #expect(boxes[0] !== boxes[1])
        #expect(boxes.map(\.text) == ["b", "b"])
        #expect(cache.recentValues.decodeCount == 7)
        let large = Answer(text: String(repeating: "x", count: RecentDecodedValues.maximumBytes), tokens: 9)
        _ = try await cache.value(for: "large", as: Answer.self) { large }
        for _ in 0..<2 { #expect(try await cache.value(for: "large", as: Answer.self) { Answer(text: "", tokens: 0) }.value == large) }
        #expect(cache.recentValues.decodeCount == 10)
        await worker.stop()
    }
}
