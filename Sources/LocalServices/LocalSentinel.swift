import Foundation
package import RedisServerProcess

/// A Sentinel deployment on loopback for tests and chaos runs: a primary, one replica and three
/// sentinels (quorum 2, `down-after-milliseconds` 1000), each a private ``RedisServerProcess``.
package final class LocalSentinel: Sendable {
    /// The name the sentinels monitor.
    package let masterName: String
    /// The data nodes: the first starts as primary, the second as its replica.
    package let dataNodes: [RedisServerProcess]
    /// The sentinels.
    package let sentinels: [RedisServerProcess]
    private let directory: String

    private init(masterName: String, dataNodes: [RedisServerProcess], sentinels: [RedisServerProcess], directory: String) {
        self.masterName = masterName
        self.dataNodes = dataNodes
        self.sentinels = sentinels
        self.directory = directory
    }

    /// `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<masterName>`.
    package var url: String {
        "redis+sentinel://" + sentinels.compactMap(\.port).map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(masterName)"
    }

    /// Starts the primary, the replica (waits until it is in sync) and the sentinels (waits until
    /// each knows the replica and the other sentinels).
    package static func start(masterName: String = "mymaster", executable: String? = nil) async throws -> LocalSentinel {
        let directory = NSTemporaryDirectory() + "stampede-sentinel-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var started: [RedisServerProcess] = []
        do {
            func options() -> RedisServerOptions {
                var options = RedisServerOptions()
                if let executable { options.executable = executable }
                options.unixSocket = false
                options.tcpPort = 0
                return options
            }
            let primary = try await RedisServerProcess.start(options())
            started.append(primary)
            guard let primaryPort = primary.port else { throw LocalServicesError("the primary has no TCP port") }
            var replicaOptions = options()
            replicaOptions.extraArguments = ["--replicaof", "127.0.0.1", "\(primaryPort)"]
            let replica = try await RedisServerProcess.start(replicaOptions)
            started.append(replica)
            try await waitFor("the replica to sync", port: primaryPort, command: ["INFO", "replication"]) { $0.contains("connected_slaves:1") && $0.contains("state=online") }
            var sentinels: [RedisServerProcess] = []
            for index in 0..<3 {
                let file = "\(directory)/sentinel-\(index).conf"
                try """
                    sentinel monitor \(masterName) 127.0.0.1 \(primaryPort) 2
                    sentinel down-after-milliseconds \(masterName) 1000
                    sentinel failover-timeout \(masterName) 5000
                    sentinel parallel-syncs \(masterName) 1

                    """.write(toFile: file, atomically: true, encoding: .utf8)
                var sentinelOptions = options()
                sentinelOptions.configFile = file
                sentinelOptions.extraArguments = ["--sentinel"]
                let sentinel = try await RedisServerProcess.start(sentinelOptions)
                started.append(sentinel)
                sentinels.append(sentinel)
            }
            for sentinel in sentinels {
                guard let port = sentinel.port else { continue }
                try await waitFor("sentinel \(port) to see the replica and the other sentinels", port: port, command: ["SENTINEL", "MASTER", masterName]) { reply in
                    let lines = reply.split(separator: "\n").map(String.init)
                    func value(_ name: String) -> String? { lines.firstIndex(of: name).flatMap { $0 + 1 < lines.count ? lines[$0 + 1] : nil } }
                    return value("num-slaves") == "1" && value("num-other-sentinels") == "2"
                }
            }
            return LocalSentinel(masterName: masterName, dataNodes: [primary, replica], sentinels: sentinels, directory: directory)
        } catch {
            for server in started { await server.stop() }
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// The port of the node the sentinels name as primary now.
    package func primaryPort() async throws -> Int {
        for sentinel in sentinels {
            guard let port = sentinel.port else { continue }
            let reply = try await LocalCluster.redisCLI(["-p", "\(port)", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName])
            let lines = reply.output.split(separator: "\n")
            if reply.ok, lines.count >= 2, let found = Int(lines[1]) { return found }
        }
        throw LocalServicesError("no sentinel named a primary")
    }

    /// `SENTINEL FAILOVER`: promotes the replica (no agreement needed), then waits until the
    /// sentinels name the new primary, it answers ROLE master and the old one ROLE slave. Returns its port.
    package func failover() async throws -> Int {
        let before = try await primaryPort()
        guard let port = sentinels.first?.port else { throw LocalServicesError("no sentinel") }
        let reply = try await LocalCluster.redisCLI(["-p", "\(port)", "SENTINEL", "FAILOVER", masterName])
        guard reply.ok else { throw LocalServicesError("SENTINEL FAILOVER failed: \(reply.output)") }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let now = try await primaryPort()
            if now != before {
                let role = try await LocalCluster.redisCLI(["-p", "\(now)", "ROLE"])
                // The old primary must be a replica too: until the sentinels reconfigure it, it
                // still accepts writes (Sentinel's own window, not the client's).
                let demoted = try await LocalCluster.redisCLI(["-p", "\(before)", "ROLE"])
                if role.output.hasPrefix("master") && demoted.output.hasPrefix("slave") { return now }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalServicesError("the failover did not finish within 30 s")
    }

    /// Stops every process and removes the configuration files.
    package func stop() async {
        for sentinel in sentinels { await sentinel.stop() }
        for node in dataNodes { await node.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func waitFor(_ what: String, port: Int, command: [String], limit: Duration = .seconds(30), _ condition: (String) -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        var last = ""
        while ContinuousClock.now < deadline {
            let reply = try await LocalCluster.redisCLI(["-p", "\(port)"] + command)
            last = reply.output
            if condition(reply.output) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalServicesError("timed out waiting for \(what); last answer: \(last.prefix(300))")
    }
}
