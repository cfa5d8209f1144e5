import ChaosKit
import Foundation
import LLMCache
import SimulatedLLM
import StampedeCache
import Synchronization

/// What one run of the workload did.
struct RunStats: Sendable {
    var requests = 0
    var errors = 0
    /// Failures that are not the simulated LLM's own (Redis refused or broke): the demo then fails.
    var infrastructureErrors = 0
    var errorsByType: [String: Int] = [:]
    var sources: [String: Int] = [:]
    var latencies = LatencySamples()
    var wakeups = LatencySamples()
    var elapsed: Duration = .zero
    var upstreamCalls = 0
    var tokensSaved = 0
    var moneySaved = 0.0

    var staleServed: Int { sources.filter { $0.key.hasPrefix("stale_") }.map(\.value).reduce(0, +) }
    var hits: Int { sources.filter { $0.key.contains("hit") || $0.key.hasPrefix("stale_") }.map(\.value).reduce(0, +) }
}

final class RunStatsCollector: Sendable {
    private let state = Mutex(RunStats())

    func record(source: String, latency: Duration, wake: Duration?, coalesced: Bool) {
        state.withLock { stats in
            stats.requests += 1
            stats.sources[coalesced ? "coalesced_in_process" : source, default: 0] += 1
            stats.latencies.append(latency.nanosecondsClamped)
            if let wake { stats.wakeups.append(wake.nanosecondsClamped) }
        }
    }

    func recordError(_ error: any Error) {
        let kind: String
        switch error {
        case UpstreamError.http(let status, _, _, _): kind = "the LLM answered HTTP \(status) (to this worker's own call)"
        case let upstream as UpstreamError: kind = "LLM call failed: \(upstream)".prefix(70).description
        case CacheError.Code.computationFailedElsewhere: kind = "waited for another worker whose LLM call failed (not retried)"
        case let cache as CacheError: kind = "cache: \(cache)".prefix(70).description
        default: kind = String(describing: error).prefix(70).description
        }
        var infrastructure = false
        switch error {
        case CacheError.Code.computationFailedElsewhere, CacheError.Code.computationTimedOut, CacheError.Code.waitTimedOut, is UpstreamError: break
        default: infrastructure = true
        }
        state.withLock { stats in
            stats.requests += 1
            stats.errors += 1
            if infrastructure { stats.infrastructureErrors += 1 }
            stats.errorsByType[kind, default: 0] += 1
        }
    }

    var requests: Int { state.withLock { $0.requests } }

    func snapshot(elapsed: Duration) -> RunStats {
        state.withLock { stats in
            var copy = stats
            copy.elapsed = elapsed
            return copy
        }
    }
}

/// Live progress on stderr: one updating line on a terminal, a line every 2 s otherwise.
final class Progress: Sendable {
    private let task: Task<Void, Never>

    init(label: String, total: Int, stats: RunStatsCollector, upstream: SimulatedLLMServer, baseline: Int = 0) {
        let terminal = isatty(STDERR_FILENO) == 1
        task = Task {
            let started = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: terminal ? .milliseconds(250) : .seconds(2))
                if Task.isCancelled { break }
                let done = stats.requests
                let line = "\(label): \(done)/\(total) requests, \(upstream.callCount - baseline) upstream calls, \(formatted((ContinuousClock.now - started).secondsDouble, 1)) s"
                FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
            }
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        }
    }

    func stop() { task.cancel() }
}

/// The demo's final report.
struct DemoReport {
    let plan: WorkloadPlan
    let workers: Int
    let callers: Int
    var stampede = RunStats()
    var cacheAside: RunStats?

    var text: String {
        let s = stampede
        var lines: [String] = []
        lines.append("")
        lines.append("StampedeCache demo: \(workers) workers x \(callers) callers, \(s.requests) requests over \(plan.distinctKeys) distinct prompts")
        lines.append("")
        lines.append("                                 LLMCache     plain cache-aside")
        func row(_ name: String, _ a: String, _ b: String) -> String {
            name.padding(toLength: 32, withPad: " ", startingAt: 0) + a.leftPadded(9) + "     " + b.leftPadded(9)
        }
        let aside = cacheAside
        lines.append(row("requests", "\(s.requests)", aside.map { "\($0.requests)" } ?? "-"))
        lines.append(row("upstream (LLM) calls", "\(s.upstreamCalls)", aside.map { "\($0.upstreamCalls)" } ?? "-"))
        lines.append(row("calls per distinct prompt", formatted(Double(s.upstreamCalls) / Double(max(1, plan.distinctKeys)), 2), aside.map { formatted(Double($0.upstreamCalls) / Double(max(1, plan.distinctKeys)), 2) } ?? "-"))
        lines.append(row("errors", "\(s.errors)", aside.map { "\($0.errors)" } ?? "-"))
        lines.append(row("latency p50 (ms)", formatted(s.latencies.percentileMicros(50) / 1000, 1), aside.map { formatted($0.latencies.percentileMicros(50) / 1000, 1) } ?? "-"))
        lines.append(row("latency p99 (ms)", formatted(s.latencies.percentileMicros(99) / 1000, 1), aside.map { formatted($0.latencies.percentileMicros(99) / 1000, 1) } ?? "-"))
        lines.append(row("elapsed (s)", formatted(s.elapsed.secondsDouble, 1), aside.map { formatted($0.elapsed.secondsDouble, 1) } ?? "-"))
        lines.append("")
        lines.append("Where LLMCache's answers came from:")
        for (source, count) in s.sources.sorted(by: { $0.value > $1.value }) {
            lines.append("  \(source.padding(toLength: 34, withPad: " ", startingAt: 0)) \(String(count).leftPadded(6))  (\(formatted(100 * Double(count) / Double(max(1, s.requests)), 1))%)")
        }
        if !s.errorsByType.isEmpty {
            lines.append("Errors (an upstream failure reaches the callers waiting for it; stale answers cover it when they exist):")
            for (kind, count) in s.errorsByType.sorted(by: { $0.value > $1.value }) { lines.append("  \(kind): \(count)") }
        }
        lines.append("")
        lines.append("Stale answers served while one worker refreshed: \(s.staleServed)")
        lines.append("Follower wake-up (answer back from the LLM -> waiting worker returns it): p50 \(formatted(s.wakeups.percentileMicros(50) / 1000, 2)) ms, p99 \(formatted(s.wakeups.percentileMicros(99) / 1000, 2)) ms over \(s.wakeups.count) hand-overs")
        lines.append("Tokens served from the cache: \(s.tokensSaved); money saved at the demo's price table: $\(formatted(s.moneySaved, 4))")
        if let aside {
            let saved = aside.upstreamCalls - s.upstreamCalls
            lines.append("Upstream calls avoided versus cache-aside: \(saved) (\(formatted(100 * Double(saved) / Double(max(1, aside.upstreamCalls)), 1))%)")
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var object: [String: Any] = [
            "requests": stampede.requests,
            "upstream_calls": stampede.upstreamCalls,
            "errors": stampede.errors,
            "stale_served": stampede.staleServed,
            "follower_wake_p50_ms": stampede.wakeups.percentileMicros(50) / 1000,
            "follower_wake_p99_ms": stampede.wakeups.percentileMicros(99) / 1000,
            "follower_handovers": stampede.wakeups.count,
            "latency_p50_ms": stampede.latencies.percentileMicros(50) / 1000,
            "latency_p99_ms": stampede.latencies.percentileMicros(99) / 1000,
            "distinct_prompts": plan.distinctKeys,
            "sources": stampede.sources,
            "tokens_saved": stampede.tokensSaved,
            "money_saved_usd": stampede.moneySaved,
            "elapsed_s": stampede.elapsed.secondsDouble,
        ]
        object["cache_aside_upstream_calls"] = cacheAside.map { $0.upstreamCalls as Any } ?? NSNull()
        object["cache_aside_requests"] = cacheAside.map { $0.requests as Any } ?? NSNull()
        object["cache_aside_errors"] = cacheAside.map { $0.errors as Any } ?? NSNull()
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
