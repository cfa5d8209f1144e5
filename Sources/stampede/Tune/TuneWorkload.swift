import ChaosKit
import Foundation
import SimulatedLLM

/// One request of the workload being tuned for: when (simulated seconds from the start) and which key.
struct Arrival: Sendable {
    var at: Double
    var key: String
}

/// The traffic `stampede tune` replays: generated from parameters or read from a trace.
struct TuneWorkload: Sendable {
    var arrivals: [Arrival]
    var latency: LatencySource
    var errorRate: Double
    /// Where the workload came from, for the report.
    var origin: String

    var duration: Double { (arrivals.last?.at ?? 0) - (arrivals.first?.at ?? 0) }
    var distinctKeys: Int { Set(arrivals.map(\.key)).count }

    /// Poisson arrivals at `rate` per second for `duration` seconds over `keys` Zipf(`zipf`) keys.
    static func generated(rate: Double, duration: Double, keys: Int, zipf: Double, latency: LatencyModel, errorRate: Double, seed: UInt64) -> TuneWorkload {
        var generator = SplitMix64(seed: seed)
        let sampler = Zipf(count: keys, exponent: zipf)
        var arrivals: [Arrival] = []
        var now = 0.0
        while true {
            now += -log(max(Double.random(in: 0..<1, using: &generator), 1e-12)) / rate
            if now >= duration { break }
            arrivals.append(Arrival(at: now, key: "k\(sampler.sample(&generator))"))
        }
        return TuneWorkload(
            arrivals: arrivals, latency: .model(latency), errorRate: errorRate,
            origin: "generated: \(formatted(rate)) req/s for \(Int(duration)) s over \(keys) keys, Zipf s=\(zipf)"
        )
    }

    /// A trace of JSON lines `{"ts": <seconds>, "key": "<key>", "latency_ms": <optional observed upstream latency>}`.
    /// Times may be absolute (epoch seconds) or relative; they are shifted to start at 0 and sorted.
    static func trace(at path: String, fallbackLatency: LatencyModel, errorRate: Double) throws -> TuneWorkload {
        guard let data = FileManager.default.contents(atPath: path) else { throw TuneError("cannot read the trace file \(path)") }
        var arrivals: [Arrival] = []
        var observed: [Duration] = []
        for (index, line) in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw TuneError("\(path):\(index + 1): not a JSON object: \(text.prefix(80))")
            }
            guard let ts = (object["ts"] as? NSNumber)?.doubleValue, ts.isFinite else {
                throw TuneError("\(path):\(index + 1): \"ts\" must be a number of seconds")
            }
            let key: String
            if let text = object["key"] as? String { key = text } else if let number = object["key"] as? NSNumber { key = number.stringValue } else {
                throw TuneError("\(path):\(index + 1): \"key\" must be a string")
            }
            if let latency = object["latency_ms"] {
                guard let ms = (latency as? NSNumber)?.doubleValue, ms >= 0, ms.isFinite else {
                    throw TuneError("\(path):\(index + 1): \"latency_ms\" must be a non-negative number")
                }
                observed.append(.milliseconds(ms))
            }
            arrivals.append(Arrival(at: ts, key: key))
        }
        guard arrivals.count >= 2 else { throw TuneError("\(path): the trace needs at least 2 requests, found \(arrivals.count)") }
        arrivals.sort { $0.at < $1.at }
        let first = arrivals[0].at
        arrivals = arrivals.map { Arrival(at: $0.at - first, key: $0.key) }
        let latency: LatencySource = observed.isEmpty ? .model(fallbackLatency) : .observed(observed)
        return TuneWorkload(
            arrivals: arrivals, latency: latency, errorRate: errorRate,
            origin: "trace \(URL(fileURLWithPath: path).lastPathComponent): \(arrivals.count) requests over \(Int(arrivals.last!.at)) s, \(Set(arrivals.map(\.key)).count) keys"
                + (observed.isEmpty ? "" : ", \(observed.count) observed upstream latencies")
        )
    }
}

/// A tuning run could not start; the message says what to fix.
struct TuneError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
