import Foundation
import RedisServerProcess
import RedisTestSupport
import SimulatedLLM
import Subprocess
import SystemPackage
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
        let result = try await Subprocess.run(
            .path(FilePath(try stampedeBinary())),
            arguments: ["demo", "--workers", "2", "--callers", "2", "--requests-per-caller", "100000", "--skip-cache-aside"],
            environment: .inherit.updating(["REDIS_URL": nil]),
            input: .none, output: .discarded, error: .discarded
        ) { execution -> (pid: Int32, directory: String?) in
            let demo = execution.processIdentifier.value
            var server: (pid: Int32, command: String)?
            try await waitUntil("the demo starts its redis-server") {
                server = children(of: demo).first { $0.command.contains("redis-server") }
                return server != nil
            }
            let child = try #require(server)
            // The server's directory holds its unix socket: "unixsocket:/tmp/stampede-redis-XXXX/redis.sock".
            let directory = child.command.split(separator: " ").first { $0.contains("/redis.sock") }
                .map { String($0.drop { $0 != "/" }).replacingOccurrences(of: "/redis.sock", with: "") }
            try execution.send(signal: Signal(rawValue: signalNumber))
            return (child.pid, directory)
        }
        // `run` returns once the demo has exited.
        let ended = switch result.terminationStatus {
        case .signaled(let signal): signal == signalNumber
        case .exited(let code): code == 128 + signalNumber
        }
        #expect(ended, "ends with the signal's status: \(result.terminationStatus)")
        let (server, directory) = result.closureResult
        try await waitUntil("the redis-server is gone") { !isAlive(server) }
        if let directory {
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) removed")
        } else {
            Issue.record("no socket directory for the server \(server)")
        }
    }

    @Test("a chaos worker whose parent dies (even by SIGKILL) exits by itself")
    func chaosWorkerDiesWithParent() async throws {
        let upstream = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(5))), apiKey: "k")
        let records = FileManager.default.temporaryDirectory.appending(path: "leftover-\(UInt32.random(in: 0..<UInt32.max)).tsv").path
        // sh starts the worker in the background and is then killed: the worker is reparented.
        let result = try await Subprocess.run(
            .path("/bin/sh"),
            arguments: ["-c", "STAMPEDE_PARENT_PID=$$ \"$0\" chaos-worker --upstream-url \"$1\" --namespace leftover --worker-index 0 --records \"$2\" --duration-ms 600000 & echo $! ; exec sleep 600", try stampedeBinary(), upstream.baseURL, records],
            environment: .inherit.updating(["REDIS_URL": try TestRedis.sharedURL]),
            input: .none, output: .sequence, error: .discarded
        ) { execution -> Int32 in
            var line = ""
            for try await first in execution.standardOutput.strings() {
                line = first.trimmingCharacters(in: .whitespacesAndNewlines)
                break
            }
            let worker = try #require(Int32(line), "worker pid from sh: '\(line)'")
            try await waitUntil("the worker is loading the upstream") { upstream.callCount > 0 }
            #expect(isAlive(worker))
            try execution.send(signal: .kill)
            return worker
        }
        let worker = result.closureResult
        try await waitUntil("the orphaned worker exits") { !isAlive(worker) || (try? String(contentsOfFile: "/proc/\(worker)/stat", encoding: .utf8))?.contains(") Z ") == true }
        try? FileManager.default.removeItem(atPath: records)
        await upstream.stop()
    }

    @Test("chaos worker processes get the Redis URL (and its password) in their environment, never in argv")
    func noSecretInWorkerArgv() async throws {
        var options = RedisServerOptions()
        options.password = "argv-secret-\(UInt32.random(in: 0..<UInt32.max))"
        try await withPrivateRedis(options) { server in
            // The URL reaches `stampede chaos` through its environment as well.
            _ = try await Subprocess.run(
                .path(FilePath(try stampedeBinary())),
                arguments: ["chaos", "--scenarios", "baseline", "--processes"],
                environment: .inherit.updating(["REDIS_URL": server.url]),
                input: .none, output: .discarded, error: .discarded
            ) { execution in
                let chaos = execution.processIdentifier.value
                var workers: [(pid: Int32, command: String)] = []
                try await waitUntil("the chaos run starts its worker processes") {
                    workers = children(of: chaos).filter { $0.command.contains("chaos-worker") }
                    return !workers.isEmpty
                }
                #expect(!workers.isEmpty)
                for worker in workers {
                    #expect(!worker.command.contains(options.password!), "argv of \(worker.pid): \(worker.command)")
                    #expect(!worker.command.contains("--redis-url"))
                }
                try execution.send(signal: .terminate)
            }
        }
    }
}
