import ChaosKit
import LocalServices
import RedisClient
import RedisServerProcess
import RedisTestSupport
import Testing

/// Every chaos scenario at its bounded smoke size, each against its own private redis-server,
/// with every invariant checked from the simulated upstream's own record of calls.
/// `stampede chaos` runs the same scenarios (same engine) against any Redis, at any size.
@Suite("chaos scenarios (smoke size)", .serialized)
struct ChaosScenarioTests {
    /// The only invariants a scenario may skip (it cannot exercise them); every other one must pass,
    /// so a skip is never counted as a pass.
    static func skippable(_ scenarios: [ChaosScenario]) -> Set<String> {
        var names: Set<String> = []
        if !scenarios.contains(.leaderFrozen) { names.insert("no_stale_fence_write") }  // only a frozen worker can become a zombie
        if scenarios.contains(.memoryPressure) { names.insert("committed_values_readable") }
        return names
    }

    static func check(_ report: ScenarioReport, _ scenarios: [ChaosScenario], _ label: String) {
        let allowedSkips = skippable(scenarios)
        for verdict in report.invariants {
            if allowedSkips.contains(verdict.name) {
                #expect(verdict.status != .fail, "\(label): \(verdict.name): \(verdict.detail)")
            } else {
                #expect(verdict.status == .pass, "\(label): \(verdict.name) must pass, not \(verdict.status.rawValue): \(verdict.detail)")
            }
        }
        #expect(report.invariants.contains { $0.name == "requests_issued" })
        #expect(report.invariants.contains { $0.name == "no_value_beyond_stale_until" })
    }

    @Test("invariants hold under the fault", arguments: ChaosScenario.allCases)
    func scenario(_ scenario: ChaosScenario) async throws {
        let report = try await Self.smoke(scenario, scenario.rawValue) { _ in }
        #expect(report.upstreamCalls > 0)
    }

    @Test(
        "invariants hold with every worker a separate OS process",
        arguments: ChaosScenario.allCases.filter { !$0.isMultiProcess }
    )
    func scenarioWithWorkerProcesses(_ scenario: ChaosScenario) async throws {
        let report = try await Self.smoke(scenario, "\(scenario.rawValue) (processes)") { $0.processes = true }
        #expect(report.fleet == "\(ChaosOptions.smoke.workers) worker processes")
        #expect(report.upstreamCalls > 0)
    }

    @Test(
        "invariants hold with every worker's near-cache on",
        arguments: ChaosScenario.allCases.filter { !$0.isMultiProcess && $0 != .lostInvalidations }
    )
    func scenarioWithNearCache(_ scenario: ChaosScenario) async throws {
        let report = try await Self.smoke(scenario, "\(scenario.rawValue) (near-cache)") { $0.nearCache = true }
        #expect(report.sources["fresh_hit_near", default: 0] > 0 || scenario == .memoryPressure, "the near-cache answered: \(report.sources)")
    }

    @Test(
        "invariants hold with every worker committing in the background (callers answered before the commit lands)",
        arguments: ChaosScenario.allCases
    )
    func scenarioWithCommitInBackground(_ scenario: ChaosScenario) async throws {
        let report = try await Self.smoke(scenario, "\(scenario.rawValue) (commit in background)") { $0.commitInBackground = true }
        #expect(report.upstreamCalls > 0)
    }

    /// Runs `scenario` at smoke size (destructive faults allowed, worker processes available) with
    /// `configure` applied, and checks that the fleet ran and every invariant holds.
    static func smoke(_ scenario: ChaosScenario, _ label: String, _ configure: (inout ChaosOptions) -> Void) async throws -> ScenarioReport {
        var options = ChaosOptions.smoke
        options.allowDestructive = true
        options.workerExecutable = try stampedeBinary()
        configure(&options)
        let report = try await ChaosRunner.run(scenario, options: options)
        #expect(report.requests > 100, "the fleet must actually run: \(report.requests) requests")
        check(report, [scenario], label)
        if !report.passed { print(ChaosReportFormat.table([report])) }
        return report
    }

    @Test("combined faults: the budget is the sum of what each fault justifies", arguments: [
        [ChaosScenario.clientKill, .upstreamErrors],
        [.scriptFlush, .lostNotices, .upstreamHangs],
    ])
    func combined(_ scenarios: [ChaosScenario]) async throws {
        var options = ChaosOptions.smoke
        options.allowDestructive = true
        let report = try await ChaosRunner.run(scenarios, options: options)
        #expect(report.name == scenarios.map(\.rawValue).joined(separator: "+"))
        #expect(report.requests > 100)
        Self.check(report, scenarios, report.name)
    }

    @Test("the baseline over TLS (rediss://, worker processes given the TLS settings with the URL): every invariant holds")
    func baselineOverTLS() async throws {
        let certificates = try await TestCertificates.shared.value
        try await withTLSRedis(certificates) { server in
            var options = ChaosOptions.smoke
            options.redisURL = server.url(["tls_ca_file": certificates.caFile])
            options.processes = true
            options.workerExecutable = try stampedeBinary()
            let report = try await ChaosRunner.run(.baseline, options: options)
            #expect(report.fleet == "\(options.workers) worker processes")
            #expect(report.requests > 100, "the fleet must actually run over TLS: \(report.requests) requests")
            #expect(report.upstreamCalls > 0)
            Self.check(report, [.baseline], "baseline over TLS")
            if !report.passed { print(ChaosReportFormat.table([report])) }
        }
    }

    @Test("the single-server scenarios on a 3+3 Redis Cluster (--redis-url of one node): every invariant holds", arguments: [
        ChaosScenario.baseline, .scriptFlush, .clientKill, .lostNotices, .upstreamErrors,
    ])
    func existingScenariosOnACluster(_ scenario: ChaosScenario) async throws {
        try await withTestCluster { cluster in
            var options = ChaosOptions.smoke
            options.redisURL = cluster.url
            options.allowDestructive = true
            let report = try await ChaosRunner.run(scenario, options: options)
            #expect(report.requests > 100, "the fleet must actually run on the cluster: \(report.requests) requests")
            #expect(report.upstreamCalls > 0)
            Self.check(report, [scenario], "\(scenario.rawValue) on a cluster")
            if !report.passed { print(ChaosReportFormat.table([report])) }
        }
    }

    @Test("the judge can fail: a cache that serves past fresh + stale (mutation) fails no_value_beyond_stale_until")
    func judgeCatchesServingPastStaleUntil() async throws {
        var options = ChaosOptions.smoke
        options.mutation = .servePastStaleUntil
        let report = try await ChaosRunner.run(.baseline, options: options)
        let verdict = try #require(report.invariants.first { $0.name == "no_value_beyond_stale_until" })
        #expect(verdict.status == .fail, "\(verdict.detail)")
        #expect(!report.passed)
    }

    @Test("the judge can fail: near-caches that ignore invalidations (mutation) fail no_answer_from_before_its_invalidation", arguments: [false, true])
    func judgeCatchesLostInvalidations(processes: Bool) async throws {
        var options = ChaosOptions.smoke
        options.allowDestructive = true
        options.processes = processes
        options.workerExecutable = try stampedeBinary()
        options.mutation = .nearCacheIgnoresInvalidations
        let report = try await ChaosRunner.run(.lostInvalidations, options: options)
        let verdict = try #require(report.invariants.first { $0.name == "no_answer_from_before_its_invalidation" })
        #expect(verdict.status == .fail, "\(verdict.detail)")
        #expect(!report.passed)
    }

    @Test("a run against a user's Redis leaves no key behind (entries, fences, accounting, generation)")
    func leavesNothingBehind() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            _ = try await client.send("SET", "users:own:key", "kept")
            var options = ChaosOptions.smoke
            options.redisURL = server.url
            let report = try await ChaosRunner.run(.baseline, options: options)
            #expect(report.requests > 100 && report.upstreamCalls > 0)
            let keys = try await client.send("KEYS", "*").array?.compactMap(\.string) ?? []
            #expect(keys == ["users:own:key"], "left behind: \(keys.prefix(10))")
            await client.close()
        }
    }

    @Test("destructive scenarios are refused without --allow-destructive, and restarts need an own server")
    func planning() {
        let plan = ChaosRunner.plan(ChaosScenario.allCases, options: ChaosOptions())
        #expect(plan.run == [.baseline, .upstreamErrors, .upstreamHangs])
        #expect(plan.skipped.count == ChaosScenario.allCases.count - 3)
        var noExecutable = ChaosOptions()
        noExecutable.allowDestructive = true
        #expect(ChaosRunner.plan([.workerKilled, .leaderFrozen], options: noExecutable).run.isEmpty)
        noExecutable.processes = true
        #expect(ChaosRunner.plan([.baseline], options: noExecutable).run.isEmpty, "worker processes need the executable")
        var external = ChaosOptions()
        external.redisURL = "redis://example:6379"
        external.allowDestructive = true
        let externalPlan = ChaosRunner.plan(ChaosScenario.allCases, options: external)
        #expect(!externalPlan.run.contains(.redisRestart) && !externalPlan.run.contains(.memoryPressure))
        #expect(externalPlan.run.contains(.clientKill))
    }
}
