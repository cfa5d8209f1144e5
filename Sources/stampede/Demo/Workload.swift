import ChaosKit

/// The requests of every caller: which key, and how long to think before it. Same seed, same plan.
struct WorkloadPlan: Sendable {
    struct Step: Sendable {
        var key: Int
        var thinkMs: Int
    }

    /// `plan[worker][caller]` is that caller's sequence of steps.
    let plan: [[[Step]]]

    init(workers: Int, callers: Int, requestsPerCaller: Int, keys: Int, zipf: Double, maxThinkMs: Int, seed: UInt64) {
        let sampler = Zipf(count: keys, exponent: zipf)
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
import SimulatedLLM
