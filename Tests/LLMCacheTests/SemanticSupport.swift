import LLMCache
import LocalServices
import Logging
import RedisClient
import RedisServerProcess
import RedisTestSupport
import SimulatedLLM
import StampedeCache
import Synchronization
import Testing

/// The real services the semantic tests run against: a private Redis 8.2 with RediSearch and the
/// local all-MiniLM-L6-v2 embeddings server, both started for the suite (installed into the cache
/// folder first when missing). A missing service is a test failure, never a skip.
enum SemanticServices {
    struct Running: Sendable {
        var redis: RedisServerProcess
        var embedder: LocalEmbedder
    }

    @TaskLocal static var running: Running?

    static var current: Running {
        get throws {
            guard let running else { throw LocalServicesError("the suite is not marked .semanticServices") }
            return running
        }
    }
}

struct SemanticServicesTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let redis = try await VectorRedis.start()
        let embedder: LocalEmbedder
        do {
            embedder = try await LocalEmbedder.start()
        } catch {
            await redis.stop()
            throw error
        }
        do {
            try await SemanticServices.$running.withValue(.init(redis: redis, embedder: embedder)) { try await function() }
        } catch {
            await embedder.stop()
            await redis.stop()
            throw error
        }
        await embedder.stop()
        await redis.stop()
    }
}

extension Trait where Self == SemanticServicesTrait {
    /// Runs the suite against a private Redis 8 + RediSearch and the local embedding model.
    static var semanticServices: Self { SemanticServicesTrait() }
}

/// An embeddings upstream that counts its calls and can be made to fail.
final class CountingEmbeddings: EmbeddingsUpstream {
    let base: any EmbeddingsUpstream
    let failing: Bool
    private let counter = CallCounter()

    init(base: any EmbeddingsUpstream, failing: Bool = false) {
        self.base = base
        self.failing = failing
    }

    var model: String { base.model }
    var calls: Int { counter.value }

    func embed(_ texts: [String], deadline: ContinuousClock.Instant) async throws -> EmbeddingBatch {
        counter.increment()
        if failing { throw UpstreamError.connection("embeddings endpoint down (test)") }
        return try await base.embed(texts, deadline: deadline)
    }
}

final class CallCounter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func increment() { count.add(1, ordering: .relaxed) }
}
