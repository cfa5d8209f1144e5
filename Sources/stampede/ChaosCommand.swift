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
    @OptionGroup(title: "TLS (rediss:// URLs)") var tls: TLSOptions
    @Option(help: "Comma-separated scenarios, each alone; join faults with + to combine them (default: every scenario alone). Known: \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", ")).")
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
    @Flag(help: "Run every scenario's workers as separate OS processes (stampede chaos-worker), as a real fleet is; worker-killed and leader-frozen always do.")
    var processes = false
    @Flag(name: .customLong("near-cache"), help: "Run every worker with the near-cache on (lost-invalidations always does).")
    var nearCache = false
    @Flag(name: .customLong("commit-in-background"), help: "Run every worker with commitInBackground (callers are answered before the commit lands).")
    var commitInBackground = false
    @Flag(name: .customLong("allow-destructive"), help: "Allow scenarios that flush, kill, pause or restart Redis.")
    var allowDestructive = false
    @Flag(help: "Print one JSON object: {passed, scenarios: [...]}.")
    var json = false

    func validate() throws {
        _ = try NumericInput.number(duration, "--duration", in: 0.1...86_400)
        _ = try NumericInput.integer(workers, "--workers", in: 1...256)
        _ = try NumericInput.integer(callers, "--callers", in: 1...4_096)
        _ = try NumericInput.integer(keys, "--keys", in: 1...1_000_000)
    }

    func run() async throws {
        var options = ChaosOptions()
        if !smoke {
            options.duration = try NumericInput.seconds(duration, "--duration", in: 0.1...86_400)
            options.workers = workers
            options.callers = callers
            options.keys = keys
        }
        options.seed = seed
        options.processes = processes
        options.nearCache = nearCache
        options.commitInBackground = commitInBackground
        options.redisURL = try tls.apply(to: redisURL ?? ProcessInfo.processInfo.environment["REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 })
        options.allowDestructive = allowDestructive || options.redisURL == nil  // private servers are ours to break
        options.workerExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        if !FileManager.default.isExecutableFile(atPath: options.workerExecutable!), let path = Bundle.main.executablePath {
            options.workerExecutable = path
        }
        // "a,b+c" runs a, then b and c together.
        var groups: [[ChaosScenario]] = ChaosScenario.allCases.map { [$0] }
        if let scenarios {
            groups = try scenarios.split(separator: ",").map { group in
                try group.split(separator: "+").map { name in
                    guard let scenario = ChaosScenario(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("unknown scenario '\(name)'; known: \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return scenario
                }
            }
        }
        var reports: [ScenarioReport] = []
        for group in groups {
            let plan = ChaosRunner.plan(group, options: options)
            if let (scenario, reason) = plan.skipped.first {
                Console.note("skipping \(group.map(\.rawValue).joined(separator: "+")): \(scenario.rawValue) \(reason)")
                continue
            }
            Console.note("running \(group.map(\.rawValue).joined(separator: "+")): \(group.map(\.summary).joined(separator: "; ")) ...")
            let report = try await ChaosRunner.run(group, options: options)
            Console.note("  \(report.passed ? "PASS" : "FAIL"): \(report.requests) requests, \(report.upstreamCalls) upstream calls, \(report.extraCalls) extra (allowed \(report.extraAllowed))")
            reports.append(report)
        }
        print(json ? ChaosReportFormat.json(reports) : ChaosReportFormat.table(reports))
        // No scenario run is no evidence: that is a failure, not a pass.
        if reports.isEmpty {
            Console.note("FAIL: every scenario was skipped, so nothing was checked (give a private Redis, or --allow-destructive)")
            throw ExitCode.failure
        }
        if !reports.allSatisfy(\.passed) { throw ExitCode.failure }
    }
}

/// `stampede chaos-worker`: one worker process of a multi-process chaos scenario (started by `stampede chaos`).
struct ChaosWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos-worker",
        abstract: "Run one chaos worker process (used by `stampede chaos` and ChaosTests); prints a JSON summary when its load ends.",
        shouldDisplay: false
    )

    /// Given by `stampede chaos` in the environment (`REDIS_URL`), never in argv: it may hold a password.
    @Option(name: .customLong("redis-url")) var redisURL: String?
    @Option(name: .customLong("upstream-url")) var upstreamURL: String
    @Option var namespace: String
    @Option(name: .customLong("worker-index")) var workerIndex: Int
    @Option var callers: Int = 6
    @Option var keys: Int = 20
    @Option var zipf: Double = 1.1
    @Option var seed: UInt64 = 7
    @Option(name: .customLong("duration-ms")) var durationMs: Int = 4_000
    @Option var records: String
    @Flag(name: .customLong("near-cache")) var nearCache = false
    @Flag(name: .customLong("commit-in-background")) var commitInBackground = false
    /// The judge's own test: a near-cache that ignores invalidations (never for real use).
    @Flag(name: .customLong("break-near-cache-coherence")) var breakNearCacheCoherence = false

    func validate() throws {
        _ = try NumericInput.integer(workerIndex, "--worker-index", in: 0...10_000)
        _ = try NumericInput.integer(callers, "--callers", in: 1...4_096)
        _ = try NumericInput.integer(keys, "--keys", in: 1...1_000_000)
        _ = try NumericInput.number(zipf, "--zipf", in: 0...10)
        _ = try NumericInput.integer(durationMs, "--duration-ms", in: 1...86_400_000)
    }

    func run() async throws {
        guard let url = redisURL ?? ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else {
            throw ValidationError("set REDIS_URL (stampede chaos does) or --redis-url")
        }
        // Die with the parent: a `stampede chaos` that is killed (even with SIGKILL, which it
        // cannot handle) must not leave its workers loading Redis. Reparenting changes getppid().
        // A thread of its own: the load keeps the cooperative pool busy. The parent names itself in
        // STAMPEDE_PARENT_PID, so a parent that died before this line still counts.
        let parent = ProcessInfo.processInfo.environment["STAMPEDE_PARENT_PID"].flatMap { Int32($0) } ?? getppid()
        Thread.detachNewThread {
            while true {
                usleep(200_000)
                if getppid() != parent { Foundation.exit(70) }
            }
        }
        let summary = try await ChaosRunner.runWorker(
            redisURL: url, upstreamURL: upstreamURL, namespace: namespace, workerIndex: workerIndex, callers: callers,
            keys: keys, zipf: zipf, seed: seed, duration: .milliseconds(durationMs), recordsPath: records,
            nearCache: nearCache, ignoreInvalidations: breakNearCacheCoherence, commitInBackground: commitInBackground
        )
        print(String(decoding: try JSONEncoder().encode(summary), as: UTF8.self))
    }
}
