import RedisClient
import RedisTestSupport
import StampedeCache
import Synchronization
import Testing

private struct Answer: Codable, Sendable, Equatable {
    var text: String
    var tokens: Int
}

private struct OtherShape: Codable, Sendable, Equatable {
    var id: UUIDLike
    struct UUIDLike: Codable, Sendable, Equatable { var raw: [Int] }
}

private let ownEncodings = Atomic<Int>(0)
private let ownDecodings = Atomic<Int>(0)

/// Writes and reads its stored JSON itself, counting both.
private struct OwnJSON: CacheValueCoding, Equatable {
    var text: String

    init(text: String) { self.text = text }

    func cacheJSON() -> [UInt8] {
        ownEncodings.add(1, ordering: .relaxed)
        return Array(#"{"text":"own:"#.utf8) + Array(text.utf8) + Array(#""}"#.utf8)
    }

    init?(cacheJSON bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix(#"{"text":"own:"#), text.hasSuffix(#""}"#) else { return nil }
        ownDecodings.add(1, ordering: .relaxed)
        self.text = String(text.dropFirst(13).dropLast(2))
    }
}

/// Declines every stored value, so `JSONDecoder` reads them.
private struct DecliningJSON: CacheValueCoding, Equatable {
    var text: String

    init(text: String) { self.text = text }

    func cacheJSON() -> [UInt8] { Array(#"{"text":"\#(text)"}"#.utf8) }

    init?(cacheJSON bytes: [UInt8]) { nil }
}

@Suite("Codable values", .sharedRedis)
struct CodableTests {
    @Test("a Codable value round-trips as JSON and the second call is a fresh hit")
    func codableRoundTrip() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let first = try await worker.cache.value(for: "q", as: Answer.self) { Answer(text: "42", tokens: 7) }
        #expect(first.value == Answer(text: "42", tokens: 7))
        #expect(first.source == .computed)
        let second = try await worker.cache.value(for: "q", as: Answer.self) { Answer(text: "other", tokens: 0) }
        #expect(second.value == Answer(text: "42", tokens: 7))
        #expect(second.source == .freshHit)
        await worker.stop()
    }

    @Test("stored JSON that no longer decodes as the type is treated as a miss and recomputed once")
    func undecodableIsRecomputed() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        _ = try await worker.cache.value(for: "q", as: Answer.self) { Answer(text: "old shape", tokens: 1) }
        let upstream = Upstream()
        let result = try await worker.cache.value(for: "q", as: OtherShape.self) {
            _ = try await upstream.compute("")()
            return OtherShape(id: .init(raw: [1, 2]))
        }
        #expect(result.value == OtherShape(id: .init(raw: [1, 2])))
        #expect(result.source == .computed)
        #expect(upstream.count == 1)
        #expect(worker.cache.diagnostics.corruptEntries == 1)
        await worker.stop()
    }

    @Test("a CacheValueCoding type's own JSON is what is stored, and its own decoder reads the hits")
    func ownCodingIsUsed() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let encodedBefore = ownEncodings.load(ordering: .relaxed)
        let decodedBefore = ownDecodings.load(ordering: .relaxed)
        let first = try await worker.cache.value(for: "q", as: OwnJSON.self) { OwnJSON(text: "a b") }
        #expect(first.value == OwnJSON(text: "a b"))
        #expect(first.source == .computed)
        let stored = try #require(try await worker.cache.freshValue(for: "q"))
        #expect(stored.value == Array(#"{"text":"own:a b"}"#.utf8))
        let second = try await worker.cache.value(for: "q", as: OwnJSON.self) { OwnJSON(text: "never") }
        #expect(second.value == OwnJSON(text: "a b"))
        #expect(second.source == .freshHit)
        let fresh = try #require(try await worker.cache.freshValue(for: "q", as: OwnJSON.self))
        #expect(fresh.value == OwnJSON(text: "a b"))
        // One encode (the computation) and one decode by the type's own decoder (the leader's
        // result): the hit and the fresh read find the same bytes, and reuse what it decoded
        // (RecentDecodedValues).
        #expect(ownEncodings.load(ordering: .relaxed) - encodedBefore == 1)
        #expect(ownDecodings.load(ordering: .relaxed) - decodedBefore == 1)
        await worker.stop()
    }

    @Test("a stored value the type's own decoder declines is read by JSONDecoder, not treated as corrupt")
    func declinedFallsBackToJSONDecoder() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        let first = try await worker.cache.value(for: "q", as: DecliningJSON.self) { DecliningJSON(text: "plain") }
        #expect(first.value == DecliningJSON(text: "plain"))
        let second = try await worker.cache.value(for: "q", as: DecliningJSON.self) { DecliningJSON(text: "never") }
        #expect(second.value == DecliningJSON(text: "plain"))
        #expect(second.source == .freshHit)
        #expect(worker.cache.diagnostics.corruptEntries == 0)
        await worker.stop()
    }
}
