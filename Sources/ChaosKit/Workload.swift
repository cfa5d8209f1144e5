/// Zipf-distributed indices 0..<count (0 is the most popular).
package struct Zipf: Sendable {
    private let cumulative: [Double]

    /// A distribution over `count` indices with exponent `exponent`.
    package init(count: Int, exponent: Double) {
        var weights = (1...max(1, count)).map { 1 / pow(Double($0), exponent) }
        let total = weights.reduce(0, +)
        var running = 0.0
        for index in weights.indices {
            running += weights[index] / total
            weights[index] = running
        }
        cumulative = weights
    }

    /// One index.
    package func sample(_ generator: inout some RandomNumberGenerator) -> Int {
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

import Foundation
