import ChaosKit
import Foundation
import SimulatedLLM
import Synchronization

/// Where an upstream's latencies come from: a model, or latencies observed in a trace.
enum LatencySource: Sendable {
    case model(LatencyModel)
    case observed([Duration])

    func sample(_ generator: inout SplitMix64) -> Duration {
        switch self {
        case .model(let model): return model.sample { Double.random(in: 0..<1, using: &generator) }
        case .observed(let latencies):
            guard !latencies.isEmpty else { return .zero }
            return latencies[Int.random(in: 0..<latencies.count, using: &generator)]
        }
    }

    /// The same source with every latency divided by `factor` (time compression).
    func compressed(by factor: Double) -> LatencySource {
        switch self {
        case .model(.fixed(let d)): return .model(.fixed(d / factor))
        case .model(.uniform(let a, let b)): return .model(.uniform(a / factor, b / factor))
        case .model(.logNormal(let p50, let p99)): return .model(.logNormal(p50: p50 / factor, p99: p99 / factor))
        case .observed(let latencies): return .observed(latencies.map { $0 / factor })
        }
    }

    /// The `p`-th percentile (0...1), by sampling the model or sorting the observations.
    func percentile(_ p: Double) -> Duration {
        var values: [Duration]
        switch self {
        case .observed(let latencies): values = latencies
        case .model:
            var generator = SplitMix64(seed: 99)
            values = (0..<200_000).map { _ in sample(&generator) }
        }
        guard !values.isEmpty else { return .zero }
        values.sort()
        return values[min(values.count - 1, Int(Double(values.count) * p))]
    }
}

/// The expensive computation every implementation in a comparison calls: it sleeps for a latency
/// drawn from a seeded model, fails at a seeded rate, and counts every call it receives (the
/// counts in the comparison come from here, not from the caches).
final class BenchUpstream: Sendable {
    /// The upstream's failure (a flaky model API).
    struct Failure: Error, CustomStringConvertible {
        var description: String { "upstream error (injected)" }
    }

    private struct State {
        var generator: SplitMix64
        var calls = 0
        var failures = 0
        var callsByKey: [String: Int] = [:]
    }

    let latency: LatencySource
    let errorRate: Double
    let valueBytes: Int
    private let state: Mutex<State>

    init(latency: LatencySource, errorRate: Double, valueBytes: Int = 1_024, seed: UInt64) {
        self.latency = latency
        self.errorRate = errorRate
        self.valueBytes = valueBytes
        state = Mutex(State(generator: SplitMix64(seed: seed)))
    }

    /// One upstream call for `key`.
    func call(_ key: String) async throws -> [UInt8] {
        let (delay, fails) = state.withLock { state -> (Duration, Bool) in
            state.calls += 1
            state.callsByKey[key, default: 0] += 1
            let delay = latency.sample(&state.generator)
            let fails = errorRate > 0 && Double.random(in: 0..<1, using: &state.generator) < errorRate
            if fails { state.failures += 1 }
            return (delay, fails)
        }
        try await Task.sleep(for: delay)
        if fails { throw Failure() }
        var value = Array("answer for \(key): ".utf8)
        value += [UInt8](repeating: UInt8(ascii: "x"), count: max(0, valueBytes - value.count))
        return value
    }

    /// Calls received so far.
    var calls: Int { state.withLock { $0.calls } }
    /// Calls that failed on purpose.
    var failures: Int { state.withLock { $0.failures } }
}
