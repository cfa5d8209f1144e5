import AsyncHTTPClient
import Foundation
import LLMCache
package import Logging
import RedisClient
import SimulatedLLM
import StampedeCache

/// What a worker process reports when its load ends (one JSON line on stdout).
package struct WorkerSummary: Sendable, Codable {
    /// Requests issued.
    package var requests = 0
    /// Requests that ended with a typed error.
    package var errors = 0
    /// Requests still running at the deadline.
    package var hung = 0
    /// Answers older than fresh + stale by the server clock.
    package var tooOld = 0
    /// Commits this worker attempted that fencing rejected (a zombie's late writes).
    package var rejectedCommits = 0
    /// Computations this worker ran.
    package var computations = 0
    /// The longest request, ms.
    package var maxLatencyMs = 0.0
    /// p99 request latency, ms.
    package var p99LatencyMs = 0.0
    /// Typed errors by kind.
    package var errorKinds: [String: Int] = [:]
    /// The worker's clock reference: record times in the records file are nanoseconds after it.
    /// `ContinuousClock` is the system-wide boot clock on Linux, so instants from worker processes
    /// and from the runner are comparable.
    package var epoch: ContinuousClock.Instant?
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
    /// The worker role (`stampede chaos-worker`): one LLMCache and `callers` concurrent callers for `duration`.
    /// Each caller's record goes to `recordsPath` (one tab-separated line per request) when given.
    package static func runWorker(
        redisURL: String, upstreamURL: String, namespace: String, workerIndex: Int, callers: Int, keys: Int, zipf: Double,
        seed: UInt64, duration: Duration, recordsPath: String? = nil, logger: Logger = Logger(label: "chaos-worker", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> WorkerSummary {
        let workerID = "worker-\(workerIndex)"
        var configuration = try RedisConfiguration(url: redisURL)
        configuration.commandTimeout = commandTimeout
        configuration.clientName = "chaos-\(workerID)"
        configuration.poolSize = 1
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
        let epoch = ContinuousClock.now
        let client = try RedisClient(configuration: configuration, logger: logger)
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(16, callers * 2))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        let openAI = OpenAIClient(configuration: OpenAIConfiguration(baseURL: upstreamURL, apiKey: "chaos", maxRetries: 0, workerID: workerID), httpClient: http, logger: logger)
        let llm = try await LLMCache(redis: client, upstream: openAI, configuration: LLMCacheConfiguration(namespace: namespace, policy: policy), logger: logger)
        let records = RecordLog()
        let zipf = Zipf(count: keys, exponent: zipf)
        let end = ContinuousClock.now + duration
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    var generator = SplitMix64(seed: seed &+ UInt64(workerIndex * 1_000 + caller) &* 0x9E37_79B9)
                    while ContinuousClock.now < end {
                        records.append(await call(llm, key: zipf.sample(&generator), seed: seed))
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 0...10, using: &generator)))
                    }
                }
            }
        }
        let diagnostics = try await llm.cache(for: namespace).diagnostics
        let all = records.all
        let limitMs = (freshFor + staleFor).milliseconds + 100
        let latencies = all.map { ($0.end - $0.start).milliseconds }.sorted()
        var errorKinds: [String: Int] = [:]
        for record in all { if let error = record.error { errorKinds[error, default: 0] += 1 } }
        let summary = WorkerSummary(
            requests: all.count, errors: all.filter { $0.error != nil && !$0.hung }.count, hung: all.filter(\.hung).count,
            tooOld: all.filter { $0.source != nil && $0.ageMs > limitMs }.count,
            rejectedCommits: diagnostics.rejectedCommits, computations: diagnostics.computations,
            maxLatencyMs: latencies.last ?? 0,
            p99LatencyMs: latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))],
            errorKinds: errorKinds, epoch: epoch
        )
        if let recordsPath {
            let text = all.map { $0.line(epoch: epoch) }.joined(separator: "\n")
            try Data(text.utf8).write(to: URL(fileURLWithPath: recordsPath))
        }
        await llm.close()
        await client.close()
        try? await http.shutdown()
        return summary
    }
}

/// A `stampede chaos-worker` child process.
final class WorkerChild: Sendable {
    let process: Process
    let output: Pipe
    let id: String

    /// Starts `stampede chaos-worker` for worker `index`, writing its records next to the run's other files.
    convenience init(executable: String, redisURL: String, upstreamURL: String, namespace: String, index: Int, callers: Int, keys: Int, zipf: Double, seed: UInt64, duration: Duration, recordsPath: String?) throws {
        var arguments = [
            "chaos-worker", "--redis-url", redisURL, "--upstream-url", upstreamURL, "--namespace", namespace,
            "--worker-index", "\(index)", "--callers", "\(callers)", "--keys", "\(keys)", "--zipf", "\(zipf)", "--seed", "\(seed)",
            "--duration-ms", "\(Int(duration.milliseconds))",
        ]
        if let recordsPath { arguments += ["--records", recordsPath] }
        try self.init(executable: executable, arguments: arguments, id: "worker-\(index)")
    }

    init(executable: String, arguments: [String], id: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        self.id = id
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits for the worker to exit and reads its summary (`nil` if it was killed or printed none).
    func finish() async -> WorkerSummary? {
        let handle = output.fileHandleForReading
        let data = await Task.detached { handle.readDataToEndOfFile() }.value
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else { return nil }
        let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        return try? JSONDecoder().decode(WorkerSummary.self, from: Data(line.utf8))
    }

    /// The worker's records (empty if it wrote none).
    static func records(at path: String, epoch: ContinuousClock.Instant) -> [ChaosRunner.RecordView] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { ChaosRunner.RecordView(line: $0, epoch: epoch) }
    }
}
