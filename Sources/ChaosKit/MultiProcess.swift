import Foundation
import LLMCache
import Logging
import RedisClient
import SimulatedLLM
import StampedeCache
#if canImport(Glibc)
import Glibc
#endif

extension ChaosRunner {
    /// Workers as OS processes; one that is computing gets killed (SIGKILL) or frozen (SIGSTOP) past its lock TTL.
    static func runMultiProcess(_ scenario: ChaosScenario, url: String, options: ChaosOptions, logger: Logger) async throws -> ScenarioReport {
        guard let executable = options.workerExecutable else { throw ChaosError("no worker executable") }
        // Slow, fixed upstream latency, so a worker is caught mid-computation.
        let upstream = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(400)), seed: options.seed))
        let namespace = "chaos\(UInt32.random(in: 0..<UInt32.max))"
        let keys = 20
        // At least two workers, so one survives the fault and takes the lock over.
        let workerCount = max(2, options.workers)
        let duration = max(options.duration, .seconds(4))
        let fleet = try await WorkerFleet.start(
            executable: executable, count: workerCount, redisURL: url, upstreamURL: upstream.baseURL, namespace: namespace,
            callers: options.callers, keys: keys, zipf: options.zipf, seed: options.seed, duration: duration,
            commitInBackground: options.commitInBackground
        )
        let children = fleet.children
        let started = ContinuousClock.now
        try? await Task.sleep(until: started + duration * 0.3, clock: .continuous)

        // Find a worker with an upstream call in flight: it holds that key's lock.
        var victim: WorkerChild?
        var victimCalls: [RecordedCall] = []
        let searchEnd = ContinuousClock.now + .seconds(3)
        while victim == nil, ContinuousClock.now < searchEnd {
            let now = ContinuousClock.now
            let inFlight = upstream.calls.filter { $0.status == 0 && now - $0.receivedAt < .milliseconds(300) && $0.worker != nil }
            if let first = inFlight.first, let child = children.first(where: { $0.id == first.worker }) {
                victim = child
                victimCalls = inFlight.filter { $0.worker == child.id }
            } else {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        guard let victim else { throw ChaosError("no worker was caught computing within 3 s") }
        let faultAt = ContinuousClock.now
        var readBack: [(key: Int, token: Int64, fence: Int64?)] = []
        if scenario == .workerKilled {
            kill(victim.pid, SIGKILL)
        } else {
            kill(victim.pid, SIGSTOP)
            try? await Task.sleep(for: lockTTL + .milliseconds(500))
            kill(victim.pid, SIGCONT)
            // Give the zombie time to try its late commit, then read the entries back.
            try? await Task.sleep(for: .milliseconds(300))
            let reader = try RedisClient(url: url, logger: logger)
            let cache = try StampedeCache(redis: reader, namespace: namespace, policy: policy, logger: logger)
            for call in victimCalls {
                guard let key = keyOf(call.lastUserMessage), let token = call.fenceToken.flatMap({ Int64($0) }) else { continue }
                let entry = try await cache.entryKeys(for: prompt(key, seed: options.seed).cacheKey().cacheKey)
                let blob = try? await reader.get(entry.value)
                readBack.append((key, token, blob.flatMap { StoredEntry(blob: $0, now: 0)?.fence }))
            }
            await cache.close()
            await reader.close()
        }
        let (records, summaries, missing) = await fleet.collect()
        let killed = scenario == .workerKilled ? [victim.id] : []  // exactly the victim reports nothing

        // Recovery probe from a fresh, in-process worker.
        let (probeClient, probeLLM) = try makeWorker("probe", url: url, upstreamURL: upstream.baseURL, namespace: namespace, logger: logger)
        let recovery = await recoveryProbe([probeLLM], keys: keys, seed: options.seed)
        // Nothing is lost: every key the surviving workers were served a value for, including the
        // ones whose locks were taken over from the victim, is readable now, unless its entry has
        // expired by design since (nothing is evicted or invalidated).
        let computedAfter = keysStillRetained(records)
        let admin = try RedisClient(url: url, clientName: "chaos-admin", logger: logger)
        let unreadable = try await unreadableKeys(computedAfter, cache: probeLLM.cache(for: namespace), admin: admin, seed: options.seed)
        await probeLLM.close()
        await removeNamespace(namespace, admin: admin, logger: logger)
        await admin.close()
        await probeClient.close()
        let calls = upstream.calls
        await upstream.stop()

        return judgeMultiProcess(
            scenario: scenario, calls: calls, records: records, summaries: summaries, workers: workerCount,
            missing: missing, killed: killed, victimCalls: victimCalls,
            readBack: readBack, faultAt: faultAt, recovery: recovery, computedAfter: computedAfter.count, unreadable: unreadable
        )
    }

    static func judgeMultiProcess(
        scenario: ChaosScenario, calls: [RecordedCall], records: [RecordView], summaries: [WorkerSummary], workers: Int,
        missing: [String], killed: [String], victimCalls: [RecordedCall],
        readBack: [(key: Int, token: Int64, fence: Int64?)], faultAt: ContinuousClock.Instant, recovery: Recovery,
        computedAfter: Int, unreadable: [Int]
    ) -> ScenarioReport {
        let extra = extraCalls(calls)
        // Locks the victim held: the calls it had in flight at the fault, and the calls it made
        // with a fence token after it resumed (it took that lock before the freeze and had not
        // reached the upstream yet; a fresh key grants no lock after the resume).
        let victimID = victimCalls.first?.worker
        let lateHolders = scenario == .leaderFrozen
            ? calls.filter { $0.worker != nil && $0.worker == victimID && $0.fenceToken != nil && $0.receivedAt > faultAt && !victimCalls.contains($0) }.count
            : 0
        let holders = victimCalls.count + lateHolders
        var verdicts: [InvariantVerdict] = []
        verdicts.append(InvariantVerdict(
            name: "requests_issued", status: records.isEmpty || calls.isEmpty ? .fail : .pass,
            detail: "\(records.count) requests, \(calls.count) upstream calls (a run without both proves nothing)"
        ))
        verdicts.append(InvariantVerdict(
            name: "upstream_calls_within_budget", status: extra <= holders ? .pass : .fail,
            detail: "\(calls.count) upstream calls, \(extra) made while an earlier answer was still fresh; allowed \(holders) (one per lock the \(scenario == .workerKilled ? "killed" : "frozen") worker held)"
        ))
        let stats = RecordStats(records)
        verdicts.append(InvariantVerdict(
            name: "every_request_ends_in_time", status: stats.hung == 0 && missing == killed ? .pass : .fail,
            detail: "\(summaries.count) workers reported, \(killed.count) killed; \(stats.hung) of \(records.count) requests still running at the \(Int(requestDeadline.milliseconds)) ms deadline"
                + (missing == killed ? "" : "; expected no report from \(killed) but none (or too few records) came from \(missing)")
        ))
        verdicts.append(stats.staleUntilVerdict)
        verdicts.append(InvariantVerdict(
            name: "committed_values_readable", status: unreadable.isEmpty ? .pass : .fail,
            detail: unreadable.isEmpty ? "all \(computedAfter) keys the surviving workers were served are readable in Redis, including those taken over from the victim" : "not readable: keys \(unreadable.prefix(10))"
        ))
        verdicts.append(InvariantVerdict(name: "recovers_to_99pct_hits", status: recovery.recovered ? .pass : .fail, detail: recovery.detail))
        if scenario == .leaderFrozen {
            let overwritten = readBack.filter { $0.fence == $0.token }.count
            let rejected = summaries.map(\.rejectedCommits).reduce(0, +)
            verdicts.append(InvariantVerdict(
                name: "no_stale_fence_write", status: overwritten == 0 ? .pass : .fail,
                detail: "the frozen worker held \(readBack.count) lock(s); entries read back after it resumed: \(overwritten) carry its stale token; fencing rejected \(rejected) late commit(s) in the fleet"
            ))
        } else {
            verdicts.append(InvariantVerdict(name: "no_stale_fence_write", status: .skipped, detail: "a killed worker writes nothing; see leader-frozen"))
        }
        return ScenarioReport(
            name: scenario.rawValue, fault: scenario.summary, requests: records.count, upstreamCalls: calls.count,
            extraCalls: extra, extraAllowed: holders, extraReason: "each lock held by the \(scenario == .workerKilled ? "killed" : "frozen") worker (\(holders)) is taken over once after its TTL",
            errors: stats.errors, maxLatencyMs: stats.maxMs, p99LatencyMs: stats.p99Ms,
            sources: stats.sources, invariants: verdicts, fleet: "\(workers) worker processes"
        )
    }

    /// Calls for a key made while an earlier successful call's answer could still have been fresh.
    static func extraCalls(_ calls: [RecordedCall]) -> Int {
        var extra = 0
        let byKey = Dictionary(grouping: calls, by: { $0.lastUserMessage })
        for (_, keyCalls) in byKey {
            var lastSuccess: ContinuousClock.Instant?
            for call in keyCalls.sorted(by: { $0.receivedAt < $1.receivedAt }) {
                if let lastSuccess, call.receivedAt < lastSuccess + freshFor { extra += 1 }
                if call.status == 200 { lastSuccess = call.receivedAt }
            }
        }
        return extra
    }
}

/// A chaos run could not be set up.
struct ChaosError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
