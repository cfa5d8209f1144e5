import RedisClient
import RedisTestSupport
import StampedeCache
import Testing

private struct Answer: Codable, Sendable, Equatable {
    var text: String
    var tokens: Int
}

private struct OtherShape: Codable, Sendable, Equatable {
    var id: UUIDLike
    struct UUIDLike: Codable, Sendable, Equatable { var raw: [Int] }
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
}
