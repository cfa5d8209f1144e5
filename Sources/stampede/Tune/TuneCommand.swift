import ArgumentParser
import Foundation
import RedisServerProcess
import SimulatedLLM

/// `stampede tune` (`stampede tune cache`): sweeps freshness, stale window, lock TTL and hot-key settings over a workload
/// replayed (time compressed) against a private redis-server, and recommends one.
struct TuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Choose lockTTL, hot-key and fresh/stale windows: replay a workload (parameters or a trace) against a private Redis for each setting of a grid.",
        discussion: """
        Each setting of the grid runs the real cache (4 workers) against a private redis-server with time
        compressed by --time-compression, and is measured: upstream calls, fresh and stale hit rates, the
        worst staleness served, the follower wait p99 and Redis memory. The recommendation is the setting
        with the fewest upstream calls whose worst staleness stays within --max-staleness (and whose lock
        TTL covers the upstream's latency tail), with the reasons. Times are in real-world seconds.
        Trace format (JSON lines): {"ts": 1700000000.25, "key": "prompt-17", "latency_ms": 2310}; latency_ms is optional.
        `stampede tune semantic` chooses the semantic similarity threshold instead.
        """
    )

    @Option(help: "A JSON-lines trace of requests to replay instead of generated traffic.")
    var trace: String?
    @Option(help: "Generated traffic: requests per second.")
    var rate: Double = 5
    @Option(help: "Generated traffic: seconds of traffic to replay.")
    var duration: Double = 3_600
    @Option(help: "Generated traffic: distinct keys.")
    var keys: Int = 200
    @Option(help: "Generated traffic: Zipf exponent of key popularity.")
    var zipf: Double = 1.1
    @Option(name: .customLong("latency-p50"), help: "Upstream latency median, seconds (used when the trace has no latency_ms).")
    var latencyP50: Double = 2
    @Option(name: .customLong("latency-p99"), help: "Upstream latency p99, seconds.")
    var latencyP99: Double = 8
    @Option(name: .customLong("error-rate"), help: "Share of upstream calls that fail (0...1).")
    var errorRate: Double = 0
    @Option(name: .customLong("max-staleness"), help: "The oldest answer you accept serving, seconds.")
    var maxStaleness: Double = 1_800
    @Option(help: "freshFor candidates, seconds, comma-separated.")
    var fresh: String = "60,300,900"
    @Option(help: "staleFor candidates, seconds, comma-separated (0 = never serve stale).")
    var stale: String = "0,900"
    @Option(name: .customLong("lock-ttl"), help: "lockTTL candidates, seconds, comma-separated (default: around the upstream's p99 and p99.9).")
    var lockTTL: String?
    @Option(help: "Hot-key candidates: 'off' or threshold/window/ttl in seconds, comma-separated, e.g. off,10/300/3600.")
    var hot: String = "off,10/300/3600"
    @Option(name: .customLong("time-compression"), help: "Simulated seconds per real second (default: the replay takes about 5 s per setting).")
    var timeCompression: Double?
    @Option(help: "Seed of the generated traffic and the upstream's latencies.")
    var seed: UInt64 = 1
    @Option(help: "Write an SVG chart of the trade-off (a .html name wraps it in a page).")
    var chart: String?
    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    static func seconds(_ list: String, _ name: String) throws -> [Double] {
        let values = try list.split(separator: ",").map { part -> Double in
            guard let value = Double(part.trimmingCharacters(in: .whitespaces)), value >= 0, value <= NumericInput.maximumSeconds else {
                throw ValidationError("--\(name): '\(part)' is not a number of seconds")
            }
            return value
        }
        guard !values.isEmpty else { throw ValidationError("--\(name) needs at least one value") }
        return values
    }

    static func hotCandidates(_ list: String) throws -> [TuneSetting.Hot?] {
        try list.split(separator: ",").map { part in
            let text = part.trimmingCharacters(in: .whitespaces)
            if text == "off" { return nil }
            let fields = text.split(separator: "/").map(String.init)
            guard fields.count == 3, let threshold = Int(fields[0]), threshold >= 1, let window = Double(fields[1]), window > 0, let ttl = Double(fields[2]), ttl >= 0 else {
                throw ValidationError("--hot: '\(text)' must be 'off' or threshold/window/ttl, e.g. 10/300/3600")
            }
            return TuneSetting.Hot(threshold: threshold, window: window, ttl: ttl)
        }
    }

    func validate() throws {
        _ = try NumericInput.number(rate, "--rate", in: 0.001...100_000)
        _ = try NumericInput.number(duration, "--duration", in: 0.001...(30 * 86_400))
        // The generated arrivals are held in memory: bound them (10 million is about 400 MB).
        guard trace != nil || rate * duration <= 10_000_000 else {
            throw ValidationError("--rate x --duration is \(Int(rate * duration)) requests; at most 10,000,000 can be replayed (lower one of them)")
        }
        _ = try NumericInput.integer(keys, "--keys", in: 1...10_000_000)
        _ = try NumericInput.number(zipf, "--zipf", in: 0...10)
        _ = try NumericInput.number(latencyP50, "--latency-p50", in: 0.001...3_600)
        _ = try NumericInput.number(latencyP99, "--latency-p99", in: latencyP50...3_600)
        guard errorRate.isFinite, (0..<1).contains(errorRate) else { throw ValidationError("--error-rate must be in [0, 1), got \(errorRate)") }
        _ = try NumericInput.number(maxStaleness, "--max-staleness", in: 0...NumericInput.maximumSeconds)
        if let timeCompression { _ = try NumericInput.number(timeCompression, "--time-compression", in: 1...1_000_000) }
    }

    func run() async throws {
        let model = LatencyModel.logNormal(p50: .seconds(latencyP50), p99: .seconds(latencyP99))
        let workload = try trace.map { try TuneWorkload.trace(at: $0, fallbackLatency: model, errorRate: errorRate) }
            ?? TuneWorkload.generated(rate: rate, duration: duration, keys: keys, zipf: zipf, latency: model, errorRate: errorRate, seed: seed)
        let p999 = workload.latency.percentile(0.999).secondsDouble
        let p99 = workload.latency.percentile(0.99).secondsDouble
        let lockCandidates = try lockTTL.map { try Self.seconds($0, "lock-ttl") } ?? [Self.roundUp(p99 * 1.1), Self.roundUp(p999 * 1.1 + 1)]
        var grid: [TuneSetting] = []
        for freshFor in try Self.seconds(fresh, "fresh") where freshFor > 0 {
            for staleFor in try Self.seconds(stale, "stale") {
                for lock in lockCandidates where lock > 0 {
                    for hot in try Self.hotCandidates(hot) { grid.append(TuneSetting(freshFor: freshFor, staleFor: staleFor, lockTTL: lock, hot: hot)) }
                }
            }
        }
        guard !grid.isEmpty else { throw ValidationError("the grid is empty: give positive --fresh and --lock-ttl values") }
        let compression = timeCompression ?? max(1, workload.duration / 5)

        let server = try await RedisServerProcess.start(RedisServerOptions())
        Console.note("tune: \(workload.origin); \(grid.count) settings, time compressed \(formatted(compression))x (about \(formatted(workload.duration / compression)) s each), private redis-server at \(server.url)")
        var results: [SettingResult] = []
        let progress = ProgressBar(total: grid.count)
        do {
            for (index, setting) in grid.enumerated() {
                progress.show(done: index, label: setting.label)
                results.append(try await TuneSweep.run(setting, workload: workload, url: server.url, compression: compression, workers: 4, seed: seed))
            }
            progress.finish()
            await server.stop()
        } catch {
            progress.finish()
            await server.stop()
            throw error
        }
        let report = TuneReport(
            workload: workload, results: results, maxStaleness: maxStaleness, compression: compression,
            latencyP99: p99, latencyP999: p999
        )
        if let chart {
            let svg = report.svg
            let text = chart.hasSuffix(".html") ? "<!doctype html><html><head><meta charset=\"utf-8\"><title>stampede tune</title></head><body>\n\(svg)</body></html>\n" : svg
            try Data(text.utf8).write(to: URL(fileURLWithPath: chart))
            Console.note("wrote \(chart)")
        }
        print(json ? report.json : report.table)
    }

    /// Rounded up to 0.1 s below 10 s and to whole seconds above (ignoring floating-point dust).
    static func roundUp(_ seconds: Double) -> Double { seconds < 10 ? (seconds * 10 - 1e-9).rounded(.up) / 10 : (seconds - 1e-9).rounded(.up) }
}

/// A progress bar on stderr: redrawn in place on a terminal, one line per step otherwise.
struct ProgressBar {
    let total: Int
    let interactive = isatty(STDERR_FILENO) != 0

    func show(done: Int, label: String) {
        let width = 24
        let filled = total == 0 ? width : done * width / total
        let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
        let line = "\(bar) \(done + 1)/\(total) \(label)"
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            Console.note(line)
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K[\(String(repeating: "#", count: 24))] done\n".utf8)) }
    }
}
