import ArgumentParser
import ChaosKit
import CHiredis
import Foundation
import NIOCore
import RedisClient
import Subprocess
import SystemPackage
import Synchronization

/// `stampede bench client`: this client against a raw blocking hiredis loop and against
/// `redis-benchmark`, on the same redis-server, in the same run.
struct ClientBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Benchmark RedisClient: single-caller GET latency vs blocking hiredis, 64-task throughput vs redis-benchmark -c 64."
    )

    @Option(name: .customLong("redis-url"), help: "Redis to use (default: $REDIS_URL, else a private redis-server started for this run).")
    var redisURL: String?
    @OptionGroup(title: "TLS (rediss:// URLs)") var tls: TLSOptions

    @Option(help: "GET round trips per single-caller measurement round.")
    var requests: Int = 20_000

    @Option(help: "Rounds; the implementations alternate round by round so drift hits both alike.")
    var rounds: Int = 5

    @Option(help: "Total GETs issued by the 64 concurrent tasks (and by redis-benchmark -n).")
    var concurrentRequests: Int = 400_000

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(name: .customLong("tls"), help: "Instead: TLS vs plaintext, this client on one private redis-server with both ports (certificates made with openssl for the run).")
    var compareTLS = false

    func validate() throws {
        _ = try NumericInput.integer(requests, "--requests", in: 1...100_000_000)
        _ = try NumericInput.integer(rounds, "--rounds", in: 1...1_000)
        _ = try NumericInput.integer(concurrentRequests, "--concurrent-requests", in: 64...1_000_000_000)
    }

    func run() async throws {
        if compareTLS {
            let report = try await TLSClientBench(requests: requests, rounds: rounds, concurrentRequests: concurrentRequests).run()
            print(json ? report.json : report.table)
            return
        }
        let report = try await RedisTarget.with(explicitURL: redisURL, tls: tls) { url in try await measure(url: url) }
        print(json ? report.json : report.table)
    }

    private func measure(url: String) async throws -> Report {
        let configuration = try RedisConfiguration(url: url)
        let key = "stampede:bench:client"
        let value = "abc"  // redis-benchmark's default 3-byte value
        var clientConfiguration = configuration
        clientConfiguration.poolSize = 1
        let client = try RedisClient(configuration: clientConfiguration)
        defer { Task { await client.close() } }
        try await client.set(key, to: RedisArgument(value))
        // redis-benchmark -t get reads "key:__rand_int__" (literally, without -r): give it the same value.
        try await client.set("key:__rand_int__", to: RedisArgument(value))

        let hiredis = try BlockingHiredis(configuration: configuration)
        var hiredisSamples = LatencySamples()
        var onLoopSamples = LatencySamples()
        var offLoopSamples = LatencySamples()
        // Warm up all three paths.
        _ = try hiredis.measureGETs(key: key, count: 2_000)
        _ = try await Self.measureGETs(client: client, key: key, count: 2_000, onEventLoop: true)
        _ = try await Self.measureGETs(client: client, key: key, count: 2_000, onEventLoop: false)
        for _ in 0..<rounds {
            hiredisSamples.append(contentsOf: try hiredis.measureGETs(key: key, count: requests))
            onLoopSamples.append(contentsOf: try await Self.measureGETs(client: client, key: key, count: requests, onEventLoop: true))
            offLoopSamples.append(contentsOf: try await Self.measureGETs(client: client, key: key, count: requests, onEventLoop: false))
        }
        hiredis.close()

        let onLoopOps = try await Self.concurrentGETs(client: client, key: key, tasks: 64, total: concurrentRequests, onEventLoop: true)
        let offLoopOps = try await Self.concurrentGETs(client: client, key: key, tasks: 64, total: concurrentRequests, onEventLoop: false)
        var redisBenchmarkOps: Double?
        var redisBenchmarkMissing = ""
        do {
            redisBenchmarkOps = try await RedisBenchmarkTool.getOpsPerSecond(configuration: configuration, clients: 64, requests: concurrentRequests)
        } catch {
            redisBenchmarkMissing = "\(error)"
        }
        await client.close()
        return Report(
            requests: requests * rounds,
            hiredis: hiredisSamples,
            onLoop: onLoopSamples,
            offLoop: offLoopSamples,
            concurrentOnLoopOps: onLoopOps,
            concurrentOffLoopOps: offLoopOps,
            redisBenchmarkOps: redisBenchmarkOps,
            redisBenchmarkMissing: redisBenchmarkMissing
        )
    }

    /// One caller, GET after GET, each round trip timed.
    static func measureGETs(client: RedisClient, key: String, count: Int, onEventLoop: Bool) async throws -> LatencySamples {
        let command = RedisCommand("GET", RedisArgument(key))
        let body: @Sendable () async throws -> LatencySamples = {
            var samples = LatencySamples()
            let clock = ContinuousClock()
            for _ in 0..<count {
                let start = clock.now
                let reply = try await client.send(command)
                samples.append((clock.now - start).nanosecondsClamped)
                guard reply.buffer?.readableBytes == 3 else { throw ValidationError("GET returned \(reply)") }
            }
            return samples
        }
        if onEventLoop {
            return try await withTaskExecutorPreference(client.taskExecutor) { try await body() }
        }
        return try await Task.detached { try await body() }.value
    }

    /// `tasks` concurrent callers issuing `total` GETs between them; returns ops/s.
    static func concurrentGETs(client: RedisClient, key: String, tasks: Int, total: Int, onEventLoop: Bool) async throws -> Double {
        let command = RedisCommand("GET", RedisArgument(key))
        let perTask = total / tasks
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                let work: @Sendable () async throws -> Void = {
                    for _ in 0..<perTask { _ = try await client.send(command) }
                }
                if onEventLoop {
                    group.addTask(executorPreference: client.taskExecutor, operation: work)
                } else {
                    group.addTask(operation: work)
                }
            }
            try await group.waitForAll()
        }
        return Double(perTask * tasks) / (ContinuousClock.now - start).secondsDouble
    }

    struct Report {
        var requests: Int
        var hiredis: LatencySamples
        var onLoop: LatencySamples
        var offLoop: LatencySamples
        var concurrentOnLoopOps: Double
        var concurrentOffLoopOps: Double
        var redisBenchmarkOps: Double?
        /// Why there is no redis-benchmark figure (empty when there is one).
        var redisBenchmarkMissing = ""
        /// How idle vCPUs wait on this machine (explains the round-trip latencies).
        var machine = IdleWakeupPolicy.current()

        var singleRatio: Double { onLoop.percentileMicros(50) / hiredis.percentileMicros(50) }
        var singleRatioOffLoop: Double { offLoop.percentileMicros(50) / hiredis.percentileMicros(50) }
        var concurrentRatio: Double? { redisBenchmarkOps.map { concurrentOnLoopOps / $0 } }

        var table: String {
            var lines: [String] = []
            if let summary = machine.summary { lines += [summary, ""] }
            lines.append("Single caller, GET of a 3-byte value, \(requests) round trips each (interleaved rounds)")
            lines.append("  implementation                          p50 µs    p99 µs   ratio p50 vs hiredis")
            func row(_ name: String, _ samples: LatencySamples, _ ratio: Double?) -> String {
                let padded = name.padding(toLength: 38, withPad: " ", startingAt: 0)
                let p50 = formatted(samples.percentileMicros(50)).leftPadded(8)
                let p99 = formatted(samples.percentileMicros(99)).leftPadded(9)
                return "  \(padded)\(p50)\(p99)   \(ratio.map { formatted($0, 2) + "x" } ?? "-")"
            }
            lines.append(row("hiredis blocking loop (baseline)", hiredis, nil))
            lines.append(row("RedisClient, caller on its event loop", onLoop, singleRatio))
            lines.append(row("RedisClient, caller on global executor", offLoop, singleRatioOffLoop))
            lines.append("  goal: on-loop ratio <= 2.0 -> \(singleRatio <= 2.0 ? "met" : "NOT met")")
            lines.append("")
            lines.append("64 concurrent callers, GET, total ops/s")
            lines.append("  RedisClient, 1 pipelined connection, callers on its loop:    \(formatted(concurrentOnLoopOps, 0))")
            lines.append("  RedisClient, 1 pipelined connection, callers on global pool: \(formatted(concurrentOffLoopOps, 0))")
            if let redisBenchmarkOps, let concurrentRatio {
                lines.append("  redis-benchmark -c 64 -t get (64 sockets):                    \(formatted(redisBenchmarkOps, 0))")
                lines.append("  ratio (on-loop / redis-benchmark): \(formatted(concurrentRatio, 2))x -> goal >= 1.0 \(concurrentRatio >= 1.0 ? "met" : "NOT met")")
            } else {
                lines.append("  no redis-benchmark figure, so no ratio: \(redisBenchmarkMissing)")
            }
            return lines.joined(separator: "\n")
        }

        var json: String {
            var object: [String: Any] = [
                "requests_per_implementation": requests,
                "hiredis_p50_us": hiredis.percentileMicros(50),
                "hiredis_p99_us": hiredis.percentileMicros(99),
                "client_on_loop_p50_us": onLoop.percentileMicros(50),
                "client_on_loop_p99_us": onLoop.percentileMicros(99),
                "client_global_executor_p50_us": offLoop.percentileMicros(50),
                "client_global_executor_p99_us": offLoop.percentileMicros(99),
                "single_p50_ratio_vs_hiredis": singleRatio,
                "single_p50_ratio_vs_hiredis_global_executor": singleRatioOffLoop,
                "concurrent64_ops_per_s": concurrentOnLoopOps,
                "concurrent64_global_executor_ops_per_s": concurrentOffLoopOps,
            ]
            object["redis_benchmark_ops_per_s"] = redisBenchmarkOps ?? NSNull()
            object["concurrent64_ops_ratio_vs_redis_benchmark"] = concurrentRatio ?? NSNull()
            object.merge(machine.jsonFields) { first, _ in first }
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// The baseline: hiredis's own blocking API, one `redisCommandArgv` per GET.
final class BlockingHiredis {
    private let context: UnsafeMutablePointer<redisContext>

    init(configuration: RedisConfiguration) throws {
        let timeout = timeval(tv_sec: 5, tv_usec: 0)
        let maybeContext: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case .tcp(let host, let port): maybeContext = redisConnectWithTimeout(host, Int32(port), timeout)
        case .unixSocket(let path): maybeContext = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let context = maybeContext, context.pointee.err == 0 else {
            throw ValidationError("hiredis baseline could not connect to \(configuration.endpoint)")
        }
        self.context = context
        var arguments = ["AUTH"]
        if let user = configuration.username { arguments.append(user) }
        if let password = configuration.password {
            arguments.append(password)
            try command(arguments)
        }
        if configuration.database != 0 { try command(["SELECT", String(configuration.database)]) }
    }

    @discardableResult
    private func command(_ arguments: [String]) throws -> Int32 {
        var cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var lengths = arguments.map { $0.utf8.count }
        let reply = cStrings.withUnsafeMutableBufferPointer { argv in
            argv.withMemoryRebound(to: UnsafePointer<CChar>?.self) { argv in
                redisCommandArgv(context, Int32(arguments.count), argv.baseAddress, &lengths)
            }
        }
        guard let reply else { throw ValidationError("hiredis baseline: connection error") }
        let type = reply.assumingMemoryBound(to: redisReply.self).pointee.type
        freeReplyObject(reply)
        if type == REDIS_REPLY_ERROR { throw ValidationError("hiredis baseline: \(arguments[0]) failed") }
        return type
    }

    func measureGETs(key: String, count: Int) throws -> LatencySamples {
        var samples = LatencySamples()
        let clock = ContinuousClock()
        let arguments = ["GET", key]
        var cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var lengths = arguments.map { $0.utf8.count }
        try cStrings.withUnsafeMutableBufferPointer { argv in
            try argv.withMemoryRebound(to: UnsafePointer<CChar>?.self) { argv in
                for _ in 0..<count {
                    let start = clock.now
                    guard let reply = redisCommandArgv(context, 2, argv.baseAddress, &lengths) else {
                        throw ValidationError("hiredis baseline: connection error")
                    }
                    samples.append((clock.now - start).nanosecondsClamped)
                    freeReplyObject(reply)
                }
            }
        }
        return samples
    }

    func close() { redisFree(context) }
}

/// Runs `redis-benchmark` against the same server and reads its GET ops/s from `--csv` output.
enum RedisBenchmarkTool {
    static func getOpsPerSecond(configuration: RedisConfiguration, clients: Int, requests: Int) async throws -> Double {
        guard let executable = findOnPath("redis-benchmark") else { throw ValidationError("redis-benchmark not found on PATH (apt-get install redis-tools)") }
        // redis-benchmark takes a password only on its command line, where every user of the machine
        // can read it (ps); it gets no secret from us.
        guard configuration.password == nil else {
            throw ValidationError("redis-benchmark takes a password only in its argv, where ps shows it; compare against a server without a password (the private default has none)")
        }
        var arguments = ["-c", String(clients), "-n", String(requests), "-t", "get", "--csv"]
        switch configuration.endpoint {
        case .tcp(let host, let port): arguments += ["-h", host, "-p", String(port)]
        case .unixSocket(let path): arguments += ["-s", path]
        }
        if configuration.database != 0 { arguments += ["--dbnum", String(configuration.database)] }
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments), input: .none, output: .string(limit: 1 << 20), error: .discarded
        )
        let output = result.standardOutput
        guard result.terminationStatus.isSuccess else {
            throw ValidationError("redis-benchmark ended with \(result.terminationStatus)")
        }
        // "test","rps",...  then  "GET","123456.79",...
        for line in output.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 2, fields[0] == "GET", let rps = Double(fields[1]) { return rps }
        }
        throw ValidationError("could not read redis-benchmark output")
    }

    static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
