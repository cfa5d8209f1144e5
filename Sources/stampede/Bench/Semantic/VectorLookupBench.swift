import ChaosKit
import Foundation
import LLMCache
import Logging
import RedisClient
import SimulatedLLM

/// KNN lookup latency and recall on the RediSearch index at a given size: `size` documents made
/// from real embeddings plus Gaussian noise (clusters of near-duplicates, as paraphrases are), and
/// `queries` new noisy vectors; recall@1 against an exact scan done here.
enum VectorLookupBench {
    struct Result: Sendable {
        var size: Int
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        var recallAt1: Double
        var insertSeconds: Double
    }

    static func run(redis: RedisClient, bases: [[Float]], size: Int, queries: Int, efRuntime: Int, seed: UInt64) async throws -> Result {
        let dimensions = bases[0].count
        let index = RediSearchIndex(redis: redis, prefix: "stampede-bench", dimensions: dimensions, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await index.drop(deleteDocuments: true)
        try await index.prepare()
        var generator = SplitMix64(seed: seed)
        // Noise of norm ~0.45 around a unit vector: the variants are ~0.9 similar to their base.
        let sigma = Float(0.45 / Double(dimensions).squareRoot())
        var stored: [[Float]] = []
        stored.reserveCapacity(size)
        let started = ContinuousClock.now
        var batch: [RedisCommand] = []
        for number in 0..<size {
            let vector = noisy(bases[number % bases.count], sigma: sigma, &generator)
            stored.append(vector)
            batch.append(RedisCommand("HSET", [
                RedisArgument("\(index.documentPrefix){bench}:\(number)"), "ctx", "bench", "state", "done",
                "vec", RedisArgument(bytes: VectorBytes.encode(vector)), "text", "", "key", RedisArgument("bench-\(number)"), "seq", RedisArgument(number),
            ]))
            if batch.count == 500 || number == size - 1 {
                let replies = try await redis.send(pipeline: batch, timeout: .seconds(300))
                if let failure = replies.first(where: { if case .error = $0 { return true } else { return false } }) {
                    throw SemanticTuneError("inserting bench documents failed: \(failure)")
                }
                batch.removeAll(keepingCapacity: true)
            }
        }
        let insertSeconds = (ContinuousClock.now - started).secondsDouble
        // Time every lookup first, then compute the exact answers: the exact scan reads every
        // stored vector (150 MB at 100k) and would evict Redis's index from the CPU caches the two
        // processes share, slowing the lookups that follow it.
        var latencies = LatencySamples()
        var asked: [([Float], String?)] = []
        for _ in 0..<queries {
            let query = noisy(bases[Int(generator.next() % UInt64(bases.count))], sigma: sigma, &generator)
            let began = ContinuousClock.now
            let found = try await index.nearest(to: query, context: "bench", k: 1, efRuntime: efRuntime)
            latencies.append((ContinuousClock.now - began).nanosecondsClamped)
            asked.append((query, found.first?.cacheKey))
        }
        var correct = 0
        for (query, answer) in asked where answer == "bench-\(exactNearest(query, in: stored))" { correct += 1 }
        try await index.drop(deleteDocuments: true)
        return Result(
            size: size, p50Milliseconds: latencies.percentileMicros(50) / 1_000, p99Milliseconds: latencies.percentileMicros(99) / 1_000,
            recallAt1: Double(correct) / Double(max(1, queries)), insertSeconds: insertSeconds
        )
    }

    static func noisy(_ base: [Float], sigma: Float, _ generator: inout SplitMix64) -> [Float] {
        var vector = base
        var index = 0
        while index < vector.count {
            // Box-Muller: two standard normals per two uniforms.
            let u1 = max(Double(generator.next() >> 11) / Double(1 << 53), 1e-12)
            let u2 = Double(generator.next() >> 11) / Double(1 << 53)
            let radius = (-2 * Foundation.log(u1)).squareRoot()
            vector[index] += sigma * Float(radius * cos(2 * .pi * u2))
            if index + 1 < vector.count { vector[index + 1] += sigma * Float(radius * sin(2 * .pi * u2)) }
            index += 2
        }
        let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }

    /// The index of the stored vector with the highest cosine similarity (all are unit vectors).
    static func exactNearest(_ query: [Float], in stored: [[Float]]) -> Int {
        var best = 0
        var bestScore = -Float.infinity
        for (number, vector) in stored.enumerated() {
            var dot: Float = 0
            for index in vector.indices { dot += vector[index] * query[index] }
            if dot > bestScore {
                bestScore = dot
                best = number
            }
        }
        return best
    }
}
