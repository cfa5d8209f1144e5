import AsyncHTTPClient
import Foundation
import LLMCache
package import Logging
import RedisClient
import RedisServerProcess
import SimulatedLLM
import StampedeCache
import Subprocess
import SystemPackage

/// What a worker process reports when its load ends (one JSON line on stdout). Everything about
/// its requests is in its records file; this carries what only the worker knows.
package struct WorkerSummary: Sendable, Codable {
    /// Requests issued (the records file must hold as many lines).
    package var requests = 0
    /// Commits this worker attempted that fencing rejected (a zombie's late writes).
    package var rejectedCommits = 0
    /// Computations this worker ran.
    package var computations = 0
    /// The worker's clock reference: record times in the records file are nanoseconds after it.
    /// `ContinuousClock` is the system-wide boot clock on Linux, so instants from worker processes
    /// and from the runner are comparable.
    package var epoch: ContinuousClock.Instant
}

extension ChaosRunner.RecordView {
    /// One tab-separated line of a worker's records file.
    func line(epoch: ContinuousClock.Instant) -> String {
        func clean(_ text: String?) -> String { (text ?? "").replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ") }
        let fields: [String] = [
            "\(key)", "\(Int64((start - epoch).milliseconds * 1_000_000))", "\(Int64((end - epoch).milliseconds * 1_000_000))",
            clean(source), clean(error), "\(ageMs)", calledUpstream ? "1" : "0", hung ? "1" : "0",
        ]
        return fields.joined(separator: "\t")
    }

    /// Parses a line written by ``line(epoch:)``.
    init?(line: Substring, epoch: ContinuousClock.Instant) {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 8, let key = Int(fields[0]), let start = Int64(fields[1]), let end = Int64(fields[2]), let age = Double(fields[5]) else { return nil }
        self.init(
            key: key, start: epoch + .nanoseconds(start), end: epoch + .nanoseconds(end),
            source: fields[3].isEmpty ? nil : String(fields[3]), error: fields[4].isEmpty ? nil : String(fields[4]),
            ageMs: age, calledUpstream: fields[6] == "1", hung: fields[7] == "1"
        )
    }
}

extension ChaosRunner {
    /// The worker role (`stampede chaos-worker`): one LLMCache and `callers` concurrent callers for
    /// `duration`; every request's record goes to `recordsPath`, one tab-separated line each.
    package static func runWorker(
        redisURL: String, upstreamURL: String, namespace: String, workerIndex: Int, callers: Int, keys: Int, zipf: Double,
        seed: UInt64, duration: Duration, recordsPath: String, nearCache: Bool = false, ignoreInvalidations: Bool = false,
        commitInBackground: Bool = false, logger: Logger = Logger(label: "chaos-worker", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> WorkerSummary {
        let epoch = ContinuousClock.now
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(16, callers * 2))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        var near: NearCacheConfiguration?
        if nearCache || ignoreInvalidations {
            near = NearCacheConfiguration()
            near?.ignoresInvalidations = ignoreInvalidations
        }
        let (client, llm) = try makeWorker(
            "worker-\(workerIndex)", url: redisURL, upstreamURL: upstreamURL, namespace: namespace, http: http, nearCache: near,
            commitInBackground: commitInBackground, logger: logger
        )
        let records = RecordLog()
        let running = BackgroundRun(llm.run)
        await runCallers([(workerIndex, llm)], callers: callers, zipf: Zipf(count: keys, exponent: zipf), seed: seed, until: .now + duration, into: records)
        let diagnostics = try llm.cache(for: namespace).diagnostics
        let all = records.all
        try Data(all.map { $0.line(epoch: epoch) }.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: recordsPath))
        await llm.close()
        await running.finished()
        await client.close()
        try? await http.shutdown()
        return WorkerSummary(requests: all.count, rejectedCommits: diagnostics.rejectedCommits, computations: diagnostics.computations, epoch: epoch)
    }
}

/// The worker processes of one run, each writing its records into one temporary directory.
struct WorkerFleet {
    let children: [WorkerChild]
    let directory: URL

    /// Starts `count` `stampede chaos-worker` processes.
    static func start(
        executable: String, count: Int, redisURL: String, upstreamURL: String, namespace: String, callers: Int, keys: Int,
        zipf: Double, seed: UInt64, duration: Duration, nearCache: Bool = false, commitInBackground: Bool = false, mutation: ChaosMutation? = nil
    ) async throws -> WorkerFleet {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stampede-chaos-\(namespace)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ProcessCleanup.register(directory: directory.path)
        var children: [WorkerChild] = []
        for index in 0..<count {
            // The Redis URL can carry a password: it goes to the child in its environment, never in
            // its argv (which every user of the machine can read with ps).
            children.append(try await WorkerChild.start(executable: executable, environment: ["REDIS_URL": redisURL, "STAMPEDE_PARENT_PID": "\(ProcessInfo.processInfo.processIdentifier)"], arguments: [
                "chaos-worker", "--upstream-url", upstreamURL, "--namespace", namespace,
                "--worker-index", "\(index)", "--callers", "\(callers)", "--keys", "\(keys)", "--zipf", "\(zipf)", "--seed", "\(seed)",
                "--duration-ms", "\(Int(duration.milliseconds))", "--records", directory.appendingPathComponent("worker-\(index).tsv").path,
            ] + (nearCache ? ["--near-cache"] : []) + (commitInBackground ? ["--commit-in-background"] : []) + (mutation == .nearCacheIgnoresInvalidations ? ["--break-near-cache-coherence"] : []), id: "worker-\(index)"))
        }
        return WorkerFleet(children: children, directory: directory)
    }

    /// Waits for every worker, merges their records, and removes the directory. A worker that
    /// was killed, failed, or wrote fewer records than it reported is listed in `missing`.
    func collect() async -> (records: [ChaosRunner.RecordView], summaries: [WorkerSummary], missing: [String]) {
        var records: [ChaosRunner.RecordView] = []
        var summaries: [WorkerSummary] = []
        var missing: [String] = []
        for child in children {
            guard let summary = await child.finish() else {
                missing.append(child.id)
                continue
            }
            let written = WorkerChild.records(at: directory.appendingPathComponent("\(child.id).tsv").path, epoch: summary.epoch)
            if written.count != summary.requests { missing.append("\(child.id) (\(written.count) of \(summary.requests) records)") }
            records += written
            summaries.append(summary)
        }
        try? FileManager.default.removeItem(at: directory)
        ProcessCleanup.unregister(directory: directory.path)
        return (records, summaries, missing)
    }
}

/// A `stampede chaos-worker` child process, run by swift-subprocess.
///
/// `run` lives in a task this object owns: it starts the child, hands its pid back (faults signal
/// it by pid: SIGSTOP, SIGCONT, SIGKILL), then collects its standard output until it exits, without
/// holding a thread. ``finish()`` awaits that task.
final class WorkerChild: Sendable {
    let id: String
    let pid: Int32
    private let running: Task<(status: TerminationStatus, output: String)?, Never>

    private init(id: String, pid: Int32, running: Task<(status: TerminationStatus, output: String)?, Never>) {
        self.id = id
        self.pid = pid
        self.running = running
    }

    static func start(executable: String, environment: [String: String] = [:], arguments: [String], id: String) async throws -> WorkerChild {
        var changes: [Environment.Key: String?] = [:]
        for (name, value) in environment {
            guard let key = Environment.Key(rawValue: name) else { throw ChaosError("invalid environment variable name \(name)") }
            changes[key] = value
        }
        let childEnvironment = Environment.inherit.updating(changes)
        let (started, starting) = AsyncStream<Result<Int32, any Error>>.makeStream()
        let running = Task { () -> (status: TerminationStatus, output: String)? in
            do {
                let result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(arguments), environment: childEnvironment,
                    input: .none, output: .string(limit: 1 << 20), error: .discarded
                ) { execution in
                    ProcessCleanup.register(pid: execution.processIdentifier.value)
                    starting.yield(.success(execution.processIdentifier.value))
                    starting.finish()
                }
                return (result.terminationStatus, result.standardOutput)
            } catch {
                starting.yield(.failure(error))
                starting.finish()
                return nil
            }
        }
        var iterator = started.makeAsyncIterator()
        guard let outcome = await iterator.next() else { throw ChaosError("worker \(id) did not start") }
        return WorkerChild(id: id, pid: try outcome.get(), running: running)
    }

    /// Waits for the worker to exit and reads its summary (`nil` if it was killed or printed none).
    func finish() async -> WorkerSummary? {
        let ended = await running.value
        ProcessCleanup.unregister(pid: pid)
        guard let ended, ended.status == .exited(0) else { return nil }
        let line = ended.output.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        return try? JSONDecoder().decode(WorkerSummary.self, from: Data(line.utf8))
    }

    /// The worker's records (empty if it wrote none).
    static func records(at path: String, epoch: ContinuousClock.Instant) -> [ChaosRunner.RecordView] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { ChaosRunner.RecordView(line: $0, epoch: epoch) }
    }
}
