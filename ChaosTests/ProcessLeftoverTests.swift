import Foundation
import RedisServerProcess
import RedisTestSupport
import SimulatedLLM
import Testing

/// Children of the process whose pid is `parent`, from /proc (Linux).
private func children(of parent: Int32) -> [(pid: Int32, command: String)] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { name -> (Int32, String)? in
        guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8) else { return nil }
        // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, Int32(fields[1]) == parent else { return nil }
        let command = (try? String(contentsOfFile: "/proc/\(name)/cmdline", encoding: .utf8))?.replacingOccurrences(of: "\0", with: " ") ?? ""
        return (pid, command)
    }
}

private func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

private func waitUntil(_ what: String, limit: Duration = .seconds(60), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("never happened: \(what)")
}

/// Processes the `stampede` command starts, and what they leave behind. These tests start fleets of
/// processes, so they run in the serial chaos phase of `make test`, not beside the timing-sensitive
/// suites.
@Suite("the stampede command line leaves nothing behind", .sharedRedis, .serialized)
struct ProcessLeftoverTests {
    @Test("SIGTERM to stampede demo stops its private redis-server and removes its directory", arguments: [SIGTERM, SIGINT])
    func signalStopsPrivateServer(_ signalNumber: Int32) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try stampedeBinary())
        process.arguments = ["demo", "--workers", "2", "--callers", "2", "--requests-per-caller", "100000", "--skip-cache-aside"]
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = nil
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var server: (pid: Int32, command: String)?
        try await waitUntil("the demo starts its redis-server") {
            server = children(of: process.processIdentifier).first { $0.command.contains("redis-server") }
            return server != nil
        }
        let child = try #require(server)
        // The server's directory holds its unix socket: "unixsocket:/tmp/stampede-redis-XXXX/redis.sock".
        let directory = child.command.split(separator: " ").first { $0.contains("/redis.sock") }
            .map { String($0.drop { $0 != "/" }).replacingOccurrences(of: "/redis.sock", with: "") }
        kill(process.processIdentifier, signalNumber)
        process.waitUntilExit()
        let bySignal = process.terminationReason == .uncaughtSignal && process.terminationStatus == signalNumber
        let byConvention = process.terminationReason == .exit && process.terminationStatus == 128 + signalNumber
        #expect(bySignal || byConvention, "ends with the signal's status: \(process.terminationReason.rawValue) \(process.terminationStatus)")
        try await waitUntil("the redis-server is gone") { !isAlive(child.pid) }
        if let directory {
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) removed")
        } else {
            Issue.record("no socket directory in \(child.command)")
        }
    }

    @Test("a chaos worker whose parent dies (even by SIGKILL) exits by itself")
    func chaosWorkerDiesWithParent() async throws {
        let upstream = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let records = FileManager.default.temporaryDirectory.appending(path: "leftover-\(UInt32.random(in: 0..<UInt32.max)).tsv").path
        // sh starts the worker in the background and is then killed: the worker is reparented.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "STAMPEDE_PARENT_PID=$$ \"$0\" chaos-worker --upstream-url \"$1\" --namespace leftover --worker-index 0 --records \"$2\" --duration-ms 600000 & echo $! ; exec sleep 600", try stampedeBinary(), upstream.baseURL, records]
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = try TestRedis.sharedURL
        shell.environment = environment
        let output = Pipe()
        shell.standardOutput = output
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let worker = try #require(Int32(line), "worker pid from sh: '\(line)'")
        try await waitUntil("the worker is loading the upstream") { upstream.callCount > 0 }
        #expect(isAlive(worker))
        kill(shell.processIdentifier, SIGKILL)
        shell.waitUntilExit()
        try await waitUntil("the orphaned worker exits") { !isAlive(worker) || (try? String(contentsOfFile: "/proc/\(worker)/stat", encoding: .utf8))?.contains(") Z ") == true }
        try? FileManager.default.removeItem(atPath: records)
        await upstream.stop()
    }

    @Test("chaos worker processes get the Redis URL (and its password) in their environment, never in argv")
    func noSecretInWorkerArgv() async throws {
        var options = RedisServerOptions()
        options.password = "argv-secret-\(UInt32.random(in: 0..<UInt32.max))"
        try await withPrivateRedis(options) { server in
            let chaos = Process()
            chaos.executableURL = URL(fileURLWithPath: try stampedeBinary())
            chaos.arguments = ["chaos", "--scenarios", "baseline", "--processes", "--redis-url", server.url]
            chaos.standardOutput = FileHandle.nullDevice
            chaos.standardError = FileHandle.nullDevice
            try chaos.run()
            var workers: [(pid: Int32, command: String)] = []
            try await waitUntil("the chaos run starts its worker processes") {
                workers = children(of: chaos.processIdentifier).filter { $0.command.contains("chaos-worker") }
                return !workers.isEmpty
            }
            #expect(!workers.isEmpty)
            for worker in workers {
                #expect(!worker.command.contains(options.password!), "argv of \(worker.pid): \(worker.command)")
                #expect(!worker.command.contains("--redis-url"))
            }
            kill(chaos.processIdentifier, SIGTERM)
            chaos.waitUntilExit()
        }
    }
}
