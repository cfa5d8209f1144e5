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
}

extension ChaosRunner {
    /// The worker role (`stampede chaos-worker`): one LLMCache and `callers` concurrent callers for `duration`.
    package static func runWorker(
        redisURL: String, upstreamURL: String, namespace: String, workerID: String, callers: Int, keys: Int, zipf: Double,
        seed: UInt64, duration: Duration, logger: Logger = Logger(label: "chaos-worker", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> WorkerSummary {
        var configuration = try RedisConfiguration(url: redisURL)
        configuration.commandTimeout = commandTimeout
        configuration.clientName = "chaos-\(workerID)"
        configuration.poolSize = 1
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
                    var generator = SplitMix64(seed: seed &+ UInt64(workerID.hashValue & 0xFFFF) &+ UInt64(caller) &* 0x9E37_79B9)
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
            errorKinds: errorKinds
        )
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
}
