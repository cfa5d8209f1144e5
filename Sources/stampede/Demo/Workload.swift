/// SplitMix64: a small, fast, seedable PRNG so every run of a workload is reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Zipf-distributed key indices 0..<count with exponent `s` (index 0 is the most popular).
struct ZipfSampler: Sendable {
    private let cumulative: [Double]

    init(count: Int, exponent: Double) {
        var weights = (1...max(1, count)).map { 1 / pow(Double($0), exponent) }
        let total = weights.reduce(0, +)
        var running = 0.0
        for index in weights.indices {
            running += weights[index] / total
            weights[index] = running
        }
        cumulative = weights
    }

    func sample(_ generator: inout some RandomNumberGenerator) -> Int {
        let draw = Double.random(in: 0..<1, using: &generator)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < draw { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// The requests of every caller: which key, and how long to think before it. Same seed, same plan.
struct WorkloadPlan: Sendable {
    struct Step: Sendable {
        var key: Int
        var thinkMs: Int
    }

    /// `plan[worker][caller]` is that caller's sequence of steps.
    let plan: [[[Step]]]

    init(workers: Int, callers: Int, requestsPerCaller: Int, keys: Int, zipf: Double, maxThinkMs: Int, seed: UInt64) {
        let sampler = ZipfSampler(count: keys, exponent: zipf)
        var plan: [[[Step]]] = []
        for worker in 0..<workers {
            var callersPlan: [[Step]] = []
            for caller in 0..<callers {
                var generator = SplitMix64(seed: seed &+ UInt64(worker * 10_000 + caller) &* 0x9E37_79B9)
                callersPlan.append((0..<requestsPerCaller).map { _ in
                    Step(key: sampler.sample(&generator), thinkMs: Int.random(in: 0...max(0, maxThinkMs), using: &generator))
                })
            }
            plan.append(callersPlan)
        }
        self.plan = plan
    }

    var totalRequests: Int { plan.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }
    var distinctKeys: Int { Set(plan.flatMap { $0.flatMap { $0.map(\.key) } }).count }
}

import Foundation
