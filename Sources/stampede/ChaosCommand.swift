import ArgumentParser
import ChaosKit
import Foundation

/// `stampede chaos`: the chaos suite against any Redis, with a report.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Run the chaos scenarios (faults under load) and check the invariants; prints a table, or JSON with --json.",
        discussion: """
        Without --redis-url/REDIS_URL every scenario runs against its own private redis-server. With a URL,
        only non-destructive scenarios run unless --allow-destructive is given, and the scenarios that
        restart Redis or change its memory limit never run against it. Runs are reproducible from --seed.
        A soak for your own Redis: stampede chaos --redis-url redis://... --allow-destructive --duration 600 --workers 8 --callers 32
        """
    )

    @Option(name: .customLong("redis-url"), help: "Redis to run against (default: $REDIS_URL, else a private redis-server per scenario).")
    var redisURL: String?
    @Option(help: "Comma-separated scenarios (default: all). Known: \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scenarios: String?
    @Flag(help: "The bounded size CI runs (the defaults below are already that size).")
    var smoke = false
    @Option(help: "Seconds of load per scenario.")
    var duration: Double = 3
    @Option(help: "Worker instances.")
    var workers: Int = 4
    @Option(help: "Concurrent callers per worker.")
    var callers: Int = 8
    @Option(help: "Distinct prompts.")
    var keys: Int = 60
    @Option(help: "Seed of the workload and the simulated upstream.")
    var seed: UInt64 = 7
    @Flag(name: .customLong("allow-destructive"), help: "Allow scenarios that flush, kill, pause or restart Redis.")
    var allowDestructive = false
    @Flag(help: "Print one JSON object: {passed, scenarios: [...]}.")
    var json = false

    func run() async throws {
        var options = ChaosOptions()
        if !smoke {
            options.duration = .milliseconds(Int64(duration * 1000))
            options.workers = workers
            options.callers = callers
            options.keys = keys
        }
        options.seed = seed
        options.redisURL = redisURL ?? ProcessInfo.processInfo.environment["REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        options.allowDestructive = allowDestructive || options.redisURL == nil  // private servers are ours to break
        var chosen = ChaosScenario.allCases
        if let scenarios {
            chosen = try scenarios.split(separator: ",").map { name in
                guard let scenario = ChaosScenario(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown scenario '\(name)'; known: \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return scenario
            }
        }
        let plan = ChaosRunner.plan(chosen, options: options)
        for (scenario, reason) in plan.skipped { Console.note("skipping \(scenario.rawValue): \(reason)") }
        var reports: [ScenarioReport] = []
        for scenario in plan.run {
            Console.note("running \(scenario.rawValue): \(scenario.summary) ...")
            let report = try await ChaosRunner.run(scenario, options: options)
            Console.note("  \(report.passed ? "PASS" : "FAIL"): \(report.requests) requests, \(report.upstreamCalls) upstream calls, \(report.extraCalls) extra (allowed \(report.extraAllowed))")
            reports.append(report)
        }
        print(json ? ChaosReportFormat.json(reports) : ChaosReportFormat.table(reports))
        if !reports.allSatisfy(\.passed) { throw ExitCode.failure }
    }
}
