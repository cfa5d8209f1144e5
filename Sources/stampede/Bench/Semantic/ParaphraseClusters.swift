import ChaosKit
import Foundation
import SimulatedLLM

/// Questions asked in several wordings (`Benchmarks/semantic/clusters.jsonl`: `{"wordings": [...]}`
/// per line), the workload of `stampede bench semantic` and `stampede demo --semantic`.
struct ParaphraseClusters: Sendable {
    let clusters: [[String]]

    static func load(_ path: String) throws -> ParaphraseClusters {
        guard let data = FileManager.default.contents(atPath: path) else { throw SemanticTuneError("cannot read \(path)") }
        struct Line: Decodable { var wordings: [String] }
        var clusters: [[String]] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            guard let parsed = try? JSONDecoder().decode(Line.self, from: Data(text.utf8)), !parsed.wordings.isEmpty else {
                throw SemanticTuneError("\(path):\(number + 1): expected {\"wordings\": [\"...\", ...]}")
            }
            clusters.append(parsed.wordings)
        }
        guard !clusters.isEmpty else { throw SemanticTuneError("\(path) holds no clusters") }
        return ParaphraseClusters(clusters: clusters)
    }

    /// `count` requests: a cluster by Zipf popularity, a wording uniformly within it; (cluster, text).
    func requests(count: Int, zipf exponent: Double, seed: UInt64) -> [(cluster: Int, text: String)] {
        var generator = SplitMix64(seed: seed)
        let zipf = Zipf(count: clusters.count, exponent: exponent)
        return (0..<count).map { _ in
            let cluster = zipf.sample(&generator)
            let wordings = clusters[cluster]
            return (cluster, wordings[Int(generator.next() % UInt64(wordings.count))])
        }
    }
}
