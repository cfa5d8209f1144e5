import Foundation
import SimulatedLLM

extension ChaosRunner {
    static func keyOf(_ prompt: String) -> Int? {
        // "chaos question <key> of run <seed>"
        let parts = prompt.split(separator: " ")
        guard parts.count >= 3, parts[0] == "chaos", parts[1] == "question" else { return nil }
        return Int(parts[2])
    }

    /// Checks the invariants from the callers' records and the upstream's own record of every call.
    static func judge(
        scenarios: [ChaosScenario], records: [RecordView], calls: [RecordedCall],
        faultInstants: [ContinuousClock.Instant], evicted: Int, recovery: Recovery, unreadable: [Int],
        invalidations: [InvalidationRecord] = [],
        workers: FleetKind
    ) -> ScenarioReport {
        // Extra calls: a call for a key made before an earlier successful call's answer could have
        // stopped being fresh (that answer was committed no earlier than the call arrived).
        let extra = extraCalls(calls)
        // A computation runs at most computeTimeout and its commit at most commandTimeout: a call
        // that arrived longer than that before a connection-level fault was committed (or abandoned)
        // before it, whatever the load on the machine.
        let inFlightWindow = computeTimeout + commandTimeout
        let inFlightAtFault = calls.filter { call in
            faultInstants.contains { call.receivedAt >= $0 - inFlightWindow && call.receivedAt <= $0 }
        }.count
        // Fail-open computations (not the callers that joined one in their process: they made no call).
        let failOpen = records.filter { $0.source == "uncached_redis_unavailable" && $0.calledUpstream }.count
        let distinctKeys = Set(calls.compactMap { keyOf($0.lastUserMessage) }).count
        // What the faults can justify, added up over the faults of the run.
        var allowed = 0
        var reasons: [String] = []
        let set = Set(scenarios)
        if !set.isDisjoint(with: [.clientKill, .redisRestart, .redisStall, .clusterFailover, .sentinelFailover]) {
            allowed += inFlightAtFault
            reasons.append("calls in flight when a connection was killed, Redis restarted, paused or failed over (\(inFlightAtFault)) can lose their commit")
        }
        if !set.isDisjoint(with: [.clientKill, .redisRestart, .redisStall, .memoryPressure, .clusterFailover, .clusterReshard, .sentinelFailover]) {
            allowed += failOpen
            reasons.append("fail-open computations while Redis was unreachable (\(failOpen)) are uncached")
        }
        if set.contains(.redisRestart) {
            allowed += distinctKeys
            reasons.append("the restart drops every entry: one recomputation per key (\(distinctKeys))")
        }
        if set.contains(.memoryPressure) {
            allowed += evicted
            reasons.append("each eviction (\(evicted)) can cost one recomputation")
        }
        let deletions = invalidations.filter(\.deleted)
        if set.contains(.lostInvalidations) {
            allowed += deletions.count
            reasons.append("each invalidation that deleted an entry (\(deletions.count)) costs one recomputation")
        }
        let reason = reasons.isEmpty ? "nothing: this fault must not cost a single extra upstream call" : reasons.joined(separator: "; ")
        var verdicts: [InvariantVerdict] = []
        // No requests is no evidence: every other invariant would pass vacuously.
        verdicts.append(InvariantVerdict(
            name: "requests_issued", status: records.isEmpty || calls.isEmpty ? .fail : .pass,
            detail: "\(records.count) requests, \(calls.count) upstream calls (a run without both proves nothing)"
        ))
        verdicts.append(InvariantVerdict(
            name: "upstream_calls_within_budget", status: extra <= allowed ? .pass : .fail,
            detail: "\(calls.count) upstream calls, \(extra) made while an earlier answer for the key was still fresh; allowed \(allowed)"
        ))
        let stats = RecordStats(records)
        var crashed: [String] = []
        if case .processes(_, let dead, _) = workers { crashed = dead }
        verdicts.append(InvariantVerdict(
            name: "every_request_ends_in_time", status: stats.hung == 0 && crashed.isEmpty ? .pass : .fail,
            detail: "\(records.count) requests, \(stats.hung) still running at the \(Int(requestDeadline.milliseconds)) ms deadline; slowest \(Int(stats.maxMs)) ms; every other ended with a value or a typed error"
                + (crashed.isEmpty ? "" : "; worker processes that crashed or reported nothing: \(crashed.joined(separator: ", "))")
        ))
        verdicts.append(stats.staleUntilVerdict)
        if set.contains(.memoryPressure) {
            verdicts.append(InvariantVerdict(name: "committed_values_readable", status: .skipped, detail: "entries are evicted on purpose in this scenario (\(evicted) evictions)"))
        } else {
            verdicts.append(InvariantVerdict(
                name: "committed_values_readable", status: unreadable.isEmpty ? .pass : .fail,
                detail: unreadable.isEmpty ? "every key computed after the fault is readable in Redis" : "not readable: keys \(unreadable.prefix(10))"
            ))
        }
        verdicts.append(InvariantVerdict(name: "recovers_to_99pct_hits", status: recovery.recovered ? .pass : .fail, detail: recovery.detail))
        if set.contains(.lostInvalidations) {
            verdicts.append(noAnswerFromBeforeItsInvalidation(records, deletions))
        }
        verdicts.append(InvariantVerdict(
            name: "no_stale_fence_write", status: .skipped,
            detail: "no worker is frozen in this scenario, so none can become a zombie; checked by leader-frozen (a worker process frozen past its lock TTL)"
                + (workers.rejectedCommits > 0 ? "; fencing rejected \(workers.rejectedCommits) late commit(s)" : "")
        ))

        return ScenarioReport(
            name: scenarios.map(\.rawValue).joined(separator: "+"), fault: scenarios.map(\.summary).joined(separator: "; "), requests: records.count, upstreamCalls: calls.count,
            extraCalls: extra, extraAllowed: allowed, extraReason: reason, errors: stats.errors,
            maxLatencyMs: stats.maxMs, p99LatencyMs: stats.p99Ms, sources: stats.sources, invariants: verdicts, fleet: workers.description
        )
    }

    /// How long after an invalidation returned an answer it deleted may still be served: the
    /// invalidation's way to every near-cache (well under 10 ms on loopback) with room for a loaded
    /// machine; far below the 1 s an entry stays fresh, so a near-cache that misses invalidations
    /// is caught.
    static let invalidationBound: Duration = .milliseconds(300)

    /// No request that started more than ``invalidationBound`` after an invalidation deleted a
    /// key's entry is answered with a value committed before it (by the answer's age on the server
    /// clock, with 20 ms for clock reading). A fail-safe answer (`stale_after_failure`) is a copy
    /// held from before the wait began, and is not counted.
    static func noAnswerFromBeforeItsInvalidation(_ records: [RecordView], _ deletions: [InvalidationRecord]) -> InvariantVerdict {
        guard !deletions.isEmpty else {
            return InvariantVerdict(name: "no_answer_from_before_its_invalidation", status: .fail, detail: "no invalidation deleted an entry: nothing was checked")
        }
        let byKey = Dictionary(grouping: deletions, by: \.key)
        var violations = 0
        var checked = 0
        var example = ""
        for record in records {
            guard let source = record.source, source != "stale_after_failure", let keyDeletions = byKey[record.key] else { continue }
            let created = record.end - .milliseconds(Int64(record.ageMs))
            for deletion in keyDeletions where record.start > deletion.after + invalidationBound {
                checked += 1
                if created < deletion.before - .milliseconds(20) {
                    violations += 1
                    if example.isEmpty {
                        example = "; e.g. key \(record.key): \(source), committed \(Int((deletion.before - created).milliseconds)) ms before an invalidation that returned \(Int((record.start - deletion.after).milliseconds)) ms before the request began"
                    }
                }
            }
        }
        return InvariantVerdict(
            name: "no_answer_from_before_its_invalidation", status: violations == 0 ? .pass : .fail,
            detail: "\(deletions.count) invalidations deleted an entry; \(checked) (request, invalidation) pairs checked, \(violations) answers committed before an invalidation served more than \(Int(invalidationBound.milliseconds)) ms after it" + example
        )
    }

    /// What the callers' records add up to, for both kinds of fleet.
    struct RecordStats {
        /// Requests still running at the request deadline.
        var hung = 0
        /// Answers older than fresh + stale (plus 100 ms of rounding) by the server clock.
        var tooOld = 0
        var errors: [String: Int] = [:]
        var sources: [String: Int] = [:]
        var maxMs = 0.0
        var p99Ms = 0.0
        static let staleLimitMs = (freshFor + staleFor).milliseconds + 100

        init(_ records: [RecordView]) {
            for record in records {
                if record.hung { hung += 1 }
                if let error = record.error { errors[error, default: 0] += 1 }
                if let source = record.source {
                    if record.ageMs > Self.staleLimitMs { tooOld += 1 }
                    sources[record.calledUpstream || source != "computed" ? source : "coalesced_in_process", default: 0] += 1
                }
            }
            var latencies = LatencySamples()
            for record in records {
                let ms = (record.end - record.start).milliseconds
                maxMs = max(maxMs, ms)
                latencies.append(Int64(ms * 1_000_000))
            }
            p99Ms = latencies.percentileMicros(99) / 1_000
        }

        var staleUntilVerdict: InvariantVerdict {
            InvariantVerdict(
                name: "no_value_beyond_stale_until", status: tooOld == 0 ? .pass : .fail,
                detail: "\(tooOld) answers older than fresh+stale (\(Int(Self.staleLimitMs)) ms) by the server clock"
            )
        }
    }

    /// How the fleet of a run was made up.
    enum FleetKind: CustomStringConvertible {
        /// Workers as tasks of the runner's process.
        case inProcess(count: Int)
        /// Workers as `stampede chaos-worker` processes; `crashed` reported nothing.
        case processes(count: Int, crashed: [String], rejectedCommits: Int)

        var rejectedCommits: Int {
            if case .processes(_, _, let rejected) = self { return rejected }
            return 0
        }

        var description: String {
            switch self {
            case .inProcess(let count): return "\(count) in-process workers"
            case .processes(let count, _, _): return "\(count) worker processes"
            }
        }
    }
}
