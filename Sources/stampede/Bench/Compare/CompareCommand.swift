import ArgumentParser
import Foundation
import RedisClient
import StampedeCache

/// `stampede bench compare`: StampedeCache against plain cache-aside and the tutorial SET NX lock,
/// on the same workloads, against one Redis, in one run.
struct CompareBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare StampedeCache with cache-aside and a SET NX + sleep lock on five workloads; table, --json, --chart SVG.",
        discussion: """
        Every implementation runs every workload against the same Redis (a private redis-server unless
        --redis-url/REDIS_URL is given) and the same simulated upstream, which counts every call it gets.
        The two baselines exist only in this benchmark and are written as tutorials write them, flaws
        included: cache-aside has no lock; the SET NX lock has a fixed 10 s TTL, is deleted without an
        ownership check, and its losers sleep 100 ms and start over.
        """
    )

    @Option(name: .customLong("redis-url"), help: "Redis to use (default: $REDIS_URL, else a private redis-server started for this run).")
    var redisURL: String?
    @Flag(help: "The bounded CI size: smaller herds and plans, and the slow-upstream workload at --time-scale 0.1.")
    var smoke = false
    @Option(name: .customLong("time-scale"), help: "Shrink the slow-upstream workload's times by this factor (default 1, or 0.1 with --smoke).")
    var timeScale: Double?
    @Option(help: "Comma-separated workloads to run (default: all): cold-herd, steady-zipf, slow-upstream, flaky-upstream, hot-path.")
    var workloads: String?
    @Option(help: "Seed of the plans and of the upstream's latencies and errors.")
    var seed: UInt64 = 42
    @Option(name: .customLong("follower-retries"), help: "StampedeCache's followerRetries (default 1, the policy's default: followers of a failed computation get one single-flight retry round; 0: they get the failure).")
    var followerRetries: Int = CachePolicy().followerRetries
    @Option(name: .customLong("hot-rounds"), help: "Rounds of the hot path; the implementations take turns, the order rotating (default 5, or 2 with --smoke).")
    var hotRoundsOption: Int?
    @Option(help: "Write an SVG chart of caller latency and upstream calls per implementation to this file.")
    var chart: String?
    @Flag(help: "Print one JSON object: {workloads: [{name, stampede_cache: {...}, cache_aside: {...}, set_nx_lock: {...}, ratios}]}.")
    var json = false

    var hotRounds: Int { hotRoundsOption ?? (smoke ? 2 : 5) }

    func validate() throws {
        if !(0...10).contains(followerRetries) { throw ValidationError("--follower-retries must be between 0 and 10") }
        if let hotRoundsOption, hotRoundsOption < 1 { throw ValidationError("--hot-rounds must be at least 1") }
        if let timeScale { _ = try NumericInput.number(timeScale, "--time-scale", in: 0.001...10) }
    }

    func run() async throws {
        let scale = timeScale ?? (smoke ? 0.1 : 1)
        var selected = CompareWorkload.standard(smoke: smoke, timeScale: scale)
        if let workloads {
            let names = workloads.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in names where !selected.contains(where: { $0.name == name }) {
                throw ValidationError("unknown workload '\(name)'; known: \(selected.map(\.name).joined(separator: ", "))")
            }
            selected = selected.filter { names.contains($0.name) }
        }
        let (results, redisVersion) = try await RedisTarget.with(explicitURL: redisURL) { url in
            let admin = try RedisClient(url: url, poolSize: 1, logger: CompareEngine.quiet)
            let info = (try? await admin.send("INFO", "server").string) ?? ""
            await admin.close()
            var results: [WorkloadResult] = []
            for var workload in selected {
                workload.settings.followerRetries = followerRetries
                let row = try await CompareEngine.run(workload, url: url, seed: seed, hotRounds: hotRounds, progress: Console.note)
                results.append(WorkloadResult(workload: workload, results: row))
            }
            return (results, Self.field("redis_version", in: info) ?? "unknown")
        }
        let report = CompareReport(results: results, timeScale: scale, seed: seed, smoke: smoke, redisVersion: redisVersion, date: Date(), followerRetries: followerRetries)
        if let chart {
            try Data(report.svg.utf8).write(to: URL(fileURLWithPath: chart))
            Console.note("wrote \(chart)")
        }
        print(json ? report.json : report.table)
    }

    static func field(_ name: String, in info: String) -> String? {
        info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
    }
}

/// The comparison's table, JSON and chart.
struct CompareReport {
    var results: [WorkloadResult]
    var timeScale: Double
    var seed: UInt64
    var smoke: Bool
    var redisVersion: String
    var date: Date
    var followerRetries: Int

    var machine: [String: Any] {
        var os = "unknown"
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8),
           let line = release.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("PRETTY_NAME=") }) {
            os = line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return [
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "memory_gib": (Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30)).rounded(),
            "os": os, "redis_version": redisVersion,
        ]
    }

    /// StampedeCache's figure divided by a baseline's (nil when the baseline's is 0).
    static func ratio(_ ours: Double, _ theirs: Double) -> Double? { theirs == 0 ? nil : ours / theirs }

    var json: String {
        var workloads: [[String: Any]] = []
        for row in results {
            var object: [String: Any] = ["name": row.workload.name, "description": row.workload.summary, "callers": row.workload.totalCallers]
            for result in row.results {
                var numbers: [String: Any] = [
                    "requests": result.requests, "upstream_calls": result.upstreamCalls, "minimum_calls": result.minimumCalls,
                    "extra_calls": result.extraCalls, "p50_ms": result.p50Ms, "p99_ms": result.p99Ms,
                    "errors": result.errorCount, "errors_by_kind": result.errors, "stale_served": result.staleServed,
                    "wall_s": result.wall.secondsDouble,
                ]
                if let ops = result.opsPerSecond { numbers["ops_per_s"] = ops }
                object[result.implementation.rawValue] = numbers
            }
            if let ours = row.result(.stampedeCache) {
                var ratios: [String: Any] = [:]
                for baseline in [Implementation.cacheAside, .setNXLock] {
                    guard let theirs = row.result(baseline) else { continue }
                    var pair: [String: Any] = [:]
                    pair["upstream_calls"] = Self.ratio(Double(ours.upstreamCalls), Double(theirs.upstreamCalls))
                    pair["p50_ms"] = Self.ratio(ours.p50Ms, theirs.p50Ms)
                    pair["p99_ms"] = Self.ratio(ours.p99Ms, theirs.p99Ms)
                    if let a = ours.opsPerSecond, let b = theirs.opsPerSecond { pair["ops_per_s"] = Self.ratio(a, b) }
                    ratios["\(Implementation.stampedeCache.rawValue)_vs_\(baseline.rawValue)"] = pair
                }
                object["ratios"] = ratios
            }
            workloads.append(object)
        }
        let top: [String: Any] = [
            "date": ISO8601DateFormatter().string(from: date), "machine": machine, "seed": seed, "smoke": smoke, "time_scale": timeScale,
            "stampede_policy": ["follower_retries": followerRetries],
            "implementations": Implementation.allCases.map { ["key": $0.rawValue, "label": $0.label] }, "workloads": workloads,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: top, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    var table: String {
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
        var lines: [String] = []
        lines.append(pad("workload", 16) + pad("implementation", 27) + pad("requests", 10) + pad("upstream", 10) + pad("extra", 8) + pad("p50 ms", 10) + pad("p99 ms", 10) + pad("errors", 8) + pad("stale", 8) + "ops/s")
        for row in results {
            for (index, result) in row.results.enumerated() {
                lines.append(
                    pad(index == 0 ? row.workload.name : "", 16) + pad(result.implementation.label, 27) + pad("\(result.requests)", 10)
                        + pad("\(result.upstreamCalls)", 10) + pad("\(result.extraCalls)", 8) + pad(formatted(result.p50Ms), 10)
                        + pad(formatted(result.p99Ms), 10) + pad("\(result.errorCount)", 8) + pad("\(result.staleServed)", 8)
                        + (result.opsPerSecond.map { String(Int($0)) } ?? "-")
                )
            }
            if let ours = row.result(.stampedeCache) {
                var parts: [String] = []
                for baseline in [Implementation.cacheAside, .setNXLock] {
                    guard let theirs = row.result(baseline) else { continue }
                    let name = baseline == .cacheAside ? "cache-aside" : "SET NX"
                    if let a = ours.opsPerSecond, let b = theirs.opsPerSecond {
                        parts.append("vs \(name): ops/s x\(formatted(a / b, 2)), p99 x\(formatted(ours.p99Ms / max(theirs.p99Ms, 0.001), 2))")
                    } else {
                        let calls = Self.ratio(Double(ours.upstreamCalls), Double(theirs.upstreamCalls)).map { formatted($0, 3) } ?? "-"
                        parts.append("vs \(name): calls x\(calls), p99 x\(formatted(ours.p99Ms / max(theirs.p99Ms, 0.001), 2))")
                    }
                }
                lines.append(pad("", 16) + "StampedeCache " + parts.joined(separator: "; "))
            }
            if let near = row.result(.stampedeCacheNear), let aside = row.result(.cacheAside), let a = near.opsPerSecond, let b = aside.opsPerSecond {
                lines.append(pad("", 16) + "StampedeCache + near-cache vs cache-aside: ops/s x\(formatted(a / b, 2)), p99 x\(formatted(near.p99Ms / max(aside.p99Ms, 0.001), 2))")
            }
        }
        lines.append("")
        for row in results { lines.append("\(row.workload.name): \(row.workload.summary)") }
        lines.append("extra = upstream calls over the minimum (one per key per freshness period in which it was asked for); stale = answers served past their freshness (StampedeCache's serve-stale-then-refresh).")
        lines.append("StampedeCache ran with followerRetries \(followerRetries)\(followerRetries == 0 ? " (its default: followers of a failed computation get the failure instead of calling again)" : "").")
        if timeScale != 1, results.contains(where: { $0.workload.name == "slow-upstream" }) { lines.append("slow-upstream ran at time scale \(timeScale): latency, lock TTLs and think times multiplied by it.") }
        return lines.joined(separator: "\n")
    }

    var svg: String {
        let implementations = Implementation.allCases
        func panel(_ title: String, _ unit: String, _ value: (ImplementationResult) -> Double, note: ((ImplementationResult) -> String)? = nil) -> BarChart {
            BarChart(
                title: title, unit: unit, logScale: true, series: implementations.map(\.label),
                groups: results.map { row in
                    BarChart.Group(label: row.workload.name, bars: row.results.compactMap { result in
                        guard let index = implementations.firstIndex(of: result.implementation) else { return nil }
                        return BarChart.Bar(series: index, value: value(result), note: note?(result))
                    })
                }
            )
        }
        return SVGDocument(
            title: "stampede bench compare\(smoke ? " --smoke" : "")",
            caption: "\(ISO8601DateFormatter().string(from: date)), \(ProcessInfo.processInfo.activeProcessorCount) cores, Redis \(redisVersion), seed \(seed)",
            series: implementations.map(\.label),
            panels: [
                panel("Upstream calls (fewer is better)", "calls", { Double($0.upstreamCalls) }),
                panel("Caller latency p99 (p50 in the label)", "milliseconds", { $0.p99Ms }, note: { "p99 \(formatted($0.p99Ms)) ms, p50 \(formatted($0.p50Ms)) ms" }),
                panel("Errors returned to callers", "errors", { Double($0.errorCount) }),
            ]
        ).text
    }
}
