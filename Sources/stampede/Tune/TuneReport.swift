import Foundation

/// The sweep's results, the recommendation with its reasons, and the chart.
struct TuneReport {
    var workload: TuneWorkload
    var results: [SettingResult]
    var maxStaleness: Double
    var compression: Double
    var latencyP99: Double
    var latencyP999: Double

    /// lockTTL must cover the upstream's p99.9 latency plus the policy's margin (10%, at least 1 s).
    var requiredLockTTL: Double { latencyP999 + max(1, latencyP999 * 0.1) }

    func withinLimit(_ result: SettingResult) -> Bool { result.worstStaleness <= maxStaleness }
    func lockCoversTail(_ result: SettingResult) -> Bool { result.setting.lockTTL >= requiredLockTTL }

    /// Upstream calls within this share of the fewest count as a tie (replays vary by a few calls).
    static let tieShare = 0.01

    /// The index of the recommended setting, and whether it meets every constraint: the fewest
    /// upstream calls (ties within 1% going to the freshest answers, then fewer errors, then the
    /// shorter follower wait).
    var recommendation: (index: Int, meetsLimit: Bool) {
        func pick(_ indices: [Int]) -> Int? {
            guard let fewest = indices.map({ results[$0].upstreamCalls }).min() else { return nil }
            let limit = Double(fewest) * (1 + Self.tieShare) + 1
            return indices.filter { Double(results[$0].upstreamCalls) <= limit }.min { a, b in
                let x = results[a], y = results[b]
                if x.worstStaleness != y.worstStaleness { return x.worstStaleness < y.worstStaleness }
                if x.errors != y.errors { return x.errors < y.errors }
                return x.followerWaitP99 < y.followerWaitP99
            }
        }
        let indices = Array(results.indices)
        if let best = pick(indices.filter { withinLimit(results[$0]) && lockCoversTail(results[$0]) }) { return (best, true) }
        if let best = pick(indices.filter { withinLimit(results[$0]) }) { return (best, false) }
        let freshest = indices.min { results[$0].worstStaleness < results[$1].worstStaleness } ?? 0
        return (freshest, false)
    }

    /// The result whose setting equals `setting` with one field changed.
    private func counterpart(_ setting: TuneSetting, _ change: (inout TuneSetting) -> Void) -> SettingResult? {
        var other = setting
        change(&other)
        return other == setting ? nil : results.first { $0.setting == other }
    }

    var explanation: [String] {
        guard !results.isEmpty else { return [] }
        let (index, meets) = recommendation
        let chosen = results[index]
        let setting = chosen.setting
        var lines: [String] = []
        let feasible = results.filter { withinLimit($0) && lockCoversTail($0) }
        if meets {
            let fewest = feasible.map(\.upstreamCalls).min() ?? chosen.upstreamCalls
            let ties = feasible.filter { Double($0.upstreamCalls) <= Double(fewest) * (1 + Self.tieShare) + 1 }.count
            lines.append("Fewest upstream calls (\(chosen.upstreamCalls) for \(chosen.requests) requests) among the \(feasible.count) of \(results.count) settings whose worst staleness stays within \(TuneSetting.short(maxStaleness)) and whose lock covers the latency tail"
                + (ties > 1 ? "; of the \(ties) within 1% of the fewest, it serves the freshest answers" : "") + "; worst staleness served here: \(formatted(chosen.worstStaleness)) s.")
        } else if withinLimit(chosen) {
            lines.append("No setting in the grid has a lockTTL covering the latency tail; this one has the fewest upstream calls within the staleness limit. Add --lock-ttl \(Int(requiredLockTTL.rounded(.up))) to the grid.")
        } else {
            lines.append("No setting keeps the worst staleness within \(TuneSetting.short(maxStaleness)); this is the freshest (worst \(formatted(chosen.worstStaleness)) s). Try shorter --fresh and --stale values, or accept older answers.")
        }
        lines.append("lockTTL must be >= p99.9 upstream latency + margin: p99.9 = \(formatted(latencyP999)) s (p99 \(formatted(latencyP99)) s) + max(1 s, 10%) = \(formatted(requiredLockTTL)) s; chosen \(TuneSetting.short(setting.lockTTL)) (compute timeout \(formatted(setting.computeTimeout)) s).")
        if let shorter = results.filter({ !lockCoversTail($0) }).max(by: { $0.errors < $1.errors }), shorter.errors > 0 || shorter.upstreamCalls > chosen.upstreamCalls {
            lines.append("With lockTTL \(TuneSetting.short(shorter.setting.lockTTL)) the slowest calls are abandoned at the compute timeout: \(shorter.errors) failed requests and \(shorter.upstreamCalls) upstream calls (\(shorter.setting.label)).")
        }
        let sameOther = results.filter { $0.setting.staleFor == setting.staleFor && $0.setting.lockTTL == setting.lockTTL && $0.setting.hot == setting.hot }
        if sameOther.count > 1 {
            let described = sameOther.sorted { $0.setting.freshFor < $1.setting.freshFor }.map {
                "\(TuneSetting.short($0.setting.freshFor)): \($0.upstreamCalls) calls, worst \(formatted($0.worstStaleness)) s\(withinLimit($0) ? "" : " (over the limit)")"
            }
            lines.append("freshFor \(TuneSetting.short(setting.freshFor)): longer freshness means fewer calls but older answers; " + described.joined(separator: "; ") + ".")
        }
        if setting.staleFor > 0, let without = counterpart(setting, { $0.staleFor = 0 }) {
            lines.append("staleFor \(TuneSetting.short(setting.staleFor)): callers get the previous answer while one worker refreshes; follower wait p99 \(formatted(chosen.followerWaitP99)) s vs \(formatted(without.followerWaitP99)) s without (\(chosen.staleHits) stale answers served; \(chosen.upstreamCalls) vs \(without.upstreamCalls) calls).")
        } else if setting.staleFor == 0, let alternatives = results.filter({ $0.setting.freshFor == setting.freshFor && $0.setting.lockTTL == setting.lockTTL && $0.setting.hot == setting.hot && $0.setting.staleFor > 0 }).first {
            lines.append("staleFor 0: serving stale (staleFor \(TuneSetting.short(alternatives.setting.staleFor))) would have cut follower wait p99 to \(formatted(alternatives.followerWaitP99)) s but served answers up to \(formatted(alternatives.worstStaleness)) s old\(withinLimit(alternatives) ? "" : ", over your limit").")
        }
        if let hot = setting.hot, let off = counterpart(setting, { $0.hot = nil }) {
            lines.append("hot keys \(hot.threshold) hits/\(TuneSetting.short(hot.window)), retention \(TuneSetting.short(hot.ttl)): popular entries outlive their stale window; \(chosen.upstreamCalls) calls vs \(off.upstreamCalls) without, Redis memory \(Self.kib(chosen.memoryBytes)) vs \(Self.kib(off.memoryBytes)).")
        } else if setting.hot == nil, let on = results.first(where: { $0.setting.freshFor == setting.freshFor && $0.setting.staleFor == setting.staleFor && $0.setting.lockTTL == setting.lockTTL && $0.setting.hot != nil }) {
            lines.append("hot keys off: promotion (\(on.setting.label)) gave \(on.upstreamCalls) calls vs \(chosen.upstreamCalls), memory \(Self.kib(on.memoryBytes)) vs \(Self.kib(chosen.memoryBytes)), worst staleness \(formatted(on.worstStaleness)) s.")
        }
        return lines
    }

    static func kib(_ bytes: Int) -> String { "\(formatted(Double(bytes) / 1_024)) KiB" }

    var json: String {
        let (index, meets) = recommendation
        let settings: [[String: Any]] = results.enumerated().map { offset, result in
            var object: [String: Any] = [
                "fresh_for_s": result.setting.freshFor, "stale_for_s": result.setting.staleFor, "lock_ttl_s": result.setting.lockTTL,
                "compute_timeout_s": result.setting.computeTimeout, "requests": result.requests, "upstream_calls": result.upstreamCalls,
                "fresh_hits": result.freshHits, "stale_hits": result.staleHits, "misses": result.misses, "errors": result.errors,
                "fresh_hit_rate": result.freshHitRate, "stale_hit_rate": result.staleHitRate, "worst_staleness_s": result.worstStaleness,
                "follower_wait_p99_s": result.followerWaitP99, "followers": result.followers, "redis_memory_bytes": result.memoryBytes,
                "redis_keys": result.keysInRedis, "within_staleness_limit": withinLimit(result), "lock_covers_latency_tail": lockCoversTail(result),
                "recommended": offset == index, "label": result.setting.label,
            ]
            if let hot = result.setting.hot {
                object["hot"] = ["threshold": hot.threshold, "window_s": hot.window, "ttl_s": hot.ttl]
            } else {
                object["hot"] = NSNull()
            }
            return object
        }
        let top: [String: Any] = [
            "workload": ["origin": workload.origin, "requests": workload.arrivals.count, "duration_s": workload.duration, "keys": workload.distinctKeys, "error_rate": workload.errorRate],
            "time_compression": compression, "max_staleness_s": maxStaleness,
            "latency_p99_s": latencyP99, "latency_p999_s": latencyP999, "required_lock_ttl_s": requiredLockTTL,
            "settings": settings,
            "recommendation": ["index": index, "meets_constraints": meets, "label": results.isEmpty ? "" : results[index].setting.label, "explanation": explanation],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: top, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    var table: String {
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
        let (index, _) = recommendation
        var lines = ["Workload: \(workload.origin); replayed at \(formatted(compression))x; max staleness \(TuneSetting.short(maxStaleness)).", ""]
        lines.append(pad("", 2) + pad("setting", 42) + pad("upstream", 10) + pad("fresh%", 8) + pad("stale%", 8) + pad("worst s", 9) + pad("wait p99 s", 11) + pad("errors", 8) + "memory")
        for (offset, result) in results.enumerated() {
            lines.append(
                pad(offset == index ? "*" : (withinLimit(result) ? "" : "!"), 2) + pad(result.setting.label, 42) + pad("\(result.upstreamCalls)", 10)
                    + pad(formatted(result.freshHitRate * 100), 8) + pad(formatted(result.staleHitRate * 100), 8) + pad(formatted(result.worstStaleness), 9)
                    + pad(formatted(result.followerWaitP99, 2), 11) + pad("\(result.errors)", 8) + Self.kib(result.memoryBytes)
            )
        }
        lines.append("")
        lines.append("* recommended; ! worst staleness over the limit. Times are real-world seconds (the replay was compressed).")
        if !results.isEmpty {
            lines.append("")
            lines.append("Recommendation: \(results[index].setting.label)")
            for line in explanation { lines.append("  - " + line) }
        }
        return lines.joined(separator: "\n")
    }

    var svg: String {
        let (index, _) = recommendation
        func panel(_ title: String, _ unit: String, log: Bool, _ value: (SettingResult) -> Double, _ note: (SettingResult) -> String) -> BarChart {
            BarChart(
                title: title, unit: unit, logScale: log, series: ["within the staleness limit", "over the limit", "recommended"],
                groups: results.enumerated().map { offset, result in
                    BarChart.Group(
                        label: (offset == index ? "* " : "") + result.setting.label,
                        bars: [BarChart.Bar(series: offset == index ? 2 : (withinLimit(result) ? 0 : 1), value: value(result), note: note(result))]
                    )
                }
            )
        }
        return SVGDocument(
            title: "stampede tune: \(workload.origin)",
            caption: "max staleness \(TuneSetting.short(maxStaleness)); lockTTL needed >= \(formatted(requiredLockTTL)) s (p99.9 \(formatted(latencyP999)) s); replayed at \(formatted(compression))x",
            series: ["within the staleness limit", "over the limit", "recommended"],
            panels: [
                panel("Upstream calls", "calls", log: false, { Double($0.upstreamCalls) }, { "\($0.upstreamCalls) calls" }),
                panel("Worst staleness served", "seconds", log: false, { $0.worstStaleness }, { "\(formatted($0.worstStaleness)) s" }),
                panel("Follower wait p99", "seconds", log: false, { $0.followerWaitP99 }, { "\(formatted($0.followerWaitP99, 2)) s" }),
                panel("Redis memory", "KiB", log: false, { Double($0.memoryBytes) / 1_024 }, { Self.kib($0.memoryBytes) }),
            ],
            width: 980
        ).text
    }
}
