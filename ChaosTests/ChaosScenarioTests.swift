import ChaosKit
import RedisTestSupport
import Testing

/// Every chaos scenario at its bounded smoke size, each against its own private redis-server,
/// with every invariant checked from the simulated upstream's own record of calls.
/// `stampede chaos` runs the same scenarios (same engine) against any Redis, at any size.
@Suite("chaos scenarios (smoke size)", .serialized)
struct ChaosScenarioTests {
    @Test("invariants hold under the fault", arguments: ChaosScenario.allCases)
    func scenario(_ scenario: ChaosScenario) async throws {
        var options = ChaosOptions.smoke
        options.allowDestructive = true
        options.workerExecutable = try stampedeBinary()
        let report = try await ChaosRunner.run(scenario, options: options)
        #expect(report.requests > 100, "the fleet must actually run: \(report.requests) requests")
        #expect(report.upstreamCalls > 0)
        for verdict in report.invariants {
            #expect(verdict.status != .fail, "\(scenario.rawValue): \(verdict.name): \(verdict.detail)")
        }
        if !report.passed { print(ChaosReportFormat.table([report])) }
    }

    @Test(
        "invariants hold with every worker a separate OS process",
        arguments: ChaosScenario.allCases.filter { !$0.isMultiProcess }
    )
    func scenarioWithWorkerProcesses(_ scenario: ChaosScenario) async throws {
        var options = ChaosOptions.smoke
        options.allowDestructive = true
        options.processes = true
        options.workerExecutable = try stampedeBinary()
        let report = try await ChaosRunner.run(scenario, options: options)
        #expect(report.fleet == "\(options.workers) worker processes")
        #expect(report.requests > 100, "the worker processes must actually run: \(report.requests) requests")
        #expect(report.upstreamCalls > 0)
        for verdict in report.invariants {
            #expect(verdict.status != .fail, "\(scenario.rawValue) (processes): \(verdict.name): \(verdict.detail)")
        }
        if !report.passed { print(ChaosReportFormat.table([report])) }
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
        for verdict in report.invariants {
            #expect(verdict.status != .fail, "\(report.name): \(verdict.name): \(verdict.detail)")
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
