import Foundation
package import RedisServerProcess
import Subprocess
import SystemPackage

/// A Redis Cluster on loopback for tests, chaos runs and benchmarks: `primaries` primaries with
/// `replicasPerPrimary` replicas each, every node a private ``RedisServerProcess`` with
/// `--cluster-enabled yes`, joined with `redis-cli --cluster create`. A short node timeout (1 s)
/// makes failovers quick.
package final class LocalCluster: Sendable {
    /// The nodes, in creation order (redis-cli makes the first `primaries` of them primaries).
    package let nodes: [RedisServerProcess]

    private init(nodes: [RedisServerProcess]) {
        self.nodes = nodes
    }

    /// The TCP port of every node.
    package var ports: [Int] { nodes.compactMap(\.port) }

    /// `redis://127.0.0.1:<first port>`: any node is a valid seed (the client detects the cluster).
    package var url: String { "redis://127.0.0.1:\(ports[0])" }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`: every node as a seed.
    package var clusterURL: String { "redis+cluster://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    /// Starts and joins the cluster, and waits until every node reports `cluster_state:ok` and
    /// knows every other node.
    package static func start(primaries: Int = 3, replicasPerPrimary: Int = 1, nodeTimeoutMs: Int = 1000, executable: String? = nil) async throws -> LocalCluster {
        let count = primaries * (1 + replicasPerPrimary)
        var nodes: [RedisServerProcess] = []
        do {
            for _ in 0..<count {
                nodes.append(try await startNode(nodeTimeoutMs: nodeTimeoutMs, executable: executable))
            }
            let cluster = LocalCluster(nodes: nodes)
            let addresses = cluster.ports.map { "127.0.0.1:\($0)" }
            let created = try await redisCLI(["--cluster", "create"] + addresses + ["--cluster-replicas", "\(replicasPerPrimary)", "--cluster-yes"])
            guard created.ok else { throw LocalServicesError("redis-cli --cluster create failed: \(created.output.suffix(2_000))") }
            try await cluster.waitUntilHealthy(expectedNodes: count, shape: (primaries, replicasPerPrimary))
            return cluster
        } catch {
            for node in nodes { await node.stop() }
            throw error
        }
    }

    private static func startNode(nodeTimeoutMs: Int, executable: String?) async throws -> RedisServerProcess {
        var lastError: (any Error)?
        for _ in 0..<3 {
            var options = RedisServerOptions()
            if let executable { options.executable = executable }
            options.unixSocket = true
            options.tcpPort = try ServerSupport.pickFreePort()
            let bus = try ServerSupport.pickFreePort()
            options.extraArguments = [
                "--cluster-enabled", "yes", "--cluster-port", "\(bus)", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "\(nodeTimeoutMs)", "--cluster-replica-validity-factor", "0",
            ]
            do {
                return try await RedisServerProcess.start(options)
            } catch {
                lastError = error  // a port was taken meanwhile
            }
        }
        throw lastError ?? LocalServicesError("could not start a cluster node")
    }

    /// Waits (up to `limit`) until the cluster has settled:
    /// - every running node says `cluster_state:ok` (and knows `expectedNodes` nodes, if given);
    /// - every running node's `CLUSTER NODES` tells the same story: the same primaries serving the
    ///   same slots, the same replicas of each (`redis-cli --cluster create` waits only for the slots
    ///   to agree; replicas become known by gossip, and a failover reaches each node in its turn);
    /// - with `shape`, that story has `shape.primaries` primaries serving slots with
    ///   `shape.replicasPerPrimary` replicas each;
    /// - every replica's replication link is up (`master_link_status:up`): until its first sync is
    ///   done, a replica cannot take part in a coordinated failover.
    package func waitUntilHealthy(expectedNodes: Int? = nil, shape: (primaries: Int, replicasPerPrimary: Int)? = nil, limit: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + limit
        var last = ""
        while ContinuousClock.now < deadline {
            if let unsettled = try await unsettledReason(expectedNodes: expectedNodes, shape: shape) {
                last = unsettled
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            return
        }
        throw LocalServicesError("the cluster did not settle within \(limit); last: \(last)")
    }

    /// Why the cluster has not settled yet (see ``waitUntilHealthy(expectedNodes:shape:limit:)``), or `nil`.
    private func unsettledReason(expectedNodes: Int?, shape: (primaries: Int, replicasPerPrimary: Int)?) async throws -> String? {
        var agreed: [String]?
        var view: [ClusterNodeLine] = []
        for port in ports {
            let info = try await Self.redisCLI(["-p", "\(port)", "CLUSTER", "INFO"])
            guard info.ok else { continue }  // a stopped node
            if !info.output.contains("cluster_state:ok") { return "127.0.0.1:\(port): \(info.output.prefix(300))" }
            if let expectedNodes, !info.output.contains("cluster_known_nodes:\(expectedNodes)") {
                return "127.0.0.1:\(port) does not know \(expectedNodes) nodes yet: \(info.output.prefix(300))"
            }
            let nodes = try await Self.redisCLI(["-p", "\(port)", "CLUSTER", "NODES"])
            guard nodes.ok else { continue }
            let lines = nodes.output.split(separator: "\n").compactMap(ClusterNodeLine.init)
            let story = Self.story(lines)
            if let agreed, agreed != story { return "127.0.0.1:\(port) sees \(story), another node \(agreed)" }
            agreed = story
            view = lines
        }
        let live = view.filter(\.isLive)
        let primaries = live.filter { $0.isPrimary && !$0.slots.isEmpty }
        let replicas = live.filter { !$0.isPrimary }
        if let shape {
            if primaries.count != shape.primaries { return "\(primaries.count) primaries serve slots, not \(shape.primaries)" }
            for primary in primaries where replicas.filter({ $0.primaryID == primary.id }).count != shape.replicasPerPrimary {
                return "127.0.0.1:\(primary.port) does not have \(shape.replicasPerPrimary) replicas yet"
            }
        }
        for replica in replicas {
            let info = try await Self.redisCLI(["-p", "\(replica.port)", "INFO", "replication"])
            guard info.ok else { continue }  // stopped since
            if !info.output.contains("master_link_status:up") { return "the replica 127.0.0.1:\(replica.port) is not in sync yet" }
        }
        return nil
    }

    /// What a node's `CLUSTER NODES` says about the live nodes, in a form two nodes' answers can be
    /// compared in: each node's id, role, primary and slots (not its flags about itself or links).
    private static func story(_ lines: [ClusterNodeLine]) -> [String] {
        lines.filter(\.isLive).map { line in
            "\(line.id) \(line.isPrimary ? "primary" : "replica of \(line.primaryID ?? "?")") \(line.slots.joined(separator: ","))"
        }.sorted()
    }

    /// `CLUSTER NODES` of the node at `port`, parsed: id, address, flags, primary id, slots.
    package func clusterNodes(asking port: Int? = nil) async throws -> [ClusterNodeLine] {
        for candidate in port.map({ [$0] }) ?? ports {
            let reply = try await Self.redisCLI(["-p", "\(candidate)", "CLUSTER", "NODES"])
            if reply.ok { return reply.output.split(separator: "\n").compactMap(ClusterNodeLine.init) }
        }
        throw LocalServicesError("no cluster node answered CLUSTER NODES")
    }

    /// Makes the replica of the primary at `primaryPort` take over (`CLUSTER FAILOVER` on the
    /// replica: a coordinated failover, no data lost), waits until the cluster agrees, and returns
    /// the promoted replica's port.
    ///
    /// A coordinated failover that does not complete (Redis gives it 5 s: the primary must answer
    /// and the replica catch up with it) is asked for again until `limit`.
    /// - Throws: when `primaryPort` is not a primary with a live replica, or no failover completed
    ///   within `limit`.
    package func failover(primaryPort: Int, limit: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        // Every node agrees on the primary's replicas, and they are in sync.
        try await waitUntilHealthy(limit: limit)
        let lines = try await clusterNodes(asking: primaryPort)
        guard let primary = lines.first(where: { $0.port == primaryPort }), primary.isPrimary else {
            throw LocalServicesError("127.0.0.1:\(primaryPort) is not a primary")
        }
        guard let replica = lines.first(where: { $0.primaryID == primary.id && $0.isLive }) else {
            throw LocalServicesError("no live replica of 127.0.0.1:\(primaryPort) to fail over to")
        }
        var asked: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            if asked.map({ ContinuousClock.now - $0 > .seconds(6) }) ?? true {
                let reply = try await Self.redisCLI(["-p", "\(replica.port)", "CLUSTER", "FAILOVER"])
                guard reply.ok, reply.output.contains("OK") else { throw LocalServicesError("CLUSTER FAILOVER failed: \(reply.output)") }
                asked = .now
            }
            let now = try await clusterNodes(asking: replica.port)
            if now.first(where: { $0.port == replica.port })?.isPrimary == true {
                try await waitUntilHealthy(limit: max(.seconds(1), deadline - .now))
                return replica.port
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalServicesError("127.0.0.1:\(replica.port) was not promoted within \(limit) of asking it to take over from 127.0.0.1:\(primaryPort)")
    }

    /// Moves `count` slots from the primary at `fromPort` to the one at `toPort` with
    /// `redis-cli --cluster reshard` (keys migrate with MIGRATE; clients see ASK and MOVED meanwhile).
    package func reshard(from fromPort: Int, to toPort: Int, slots count: Int) async throws {
        let lines = try await clusterNodes()
        guard let from = lines.first(where: { $0.port == fromPort }), let to = lines.first(where: { $0.port == toPort }) else {
            throw LocalServicesError("reshard: unknown node")
        }
        let reply = try await Self.redisCLI([
            "--cluster", "reshard", "127.0.0.1:\(fromPort)", "--cluster-from", from.id, "--cluster-to", to.id,
            "--cluster-slots", "\(count)", "--cluster-yes", "--cluster-pipeline", "100",
        ], timeout: .seconds(300))
        guard reply.ok else { throw LocalServicesError("redis-cli --cluster reshard failed: \(reply.output.suffix(2_000))") }
        try await waitUntilHealthy()
    }

    /// Moves the slots of up to `maxSlots` keys matching `pattern` on the primary at `fromPort` to
    /// the primary at `toPort`, key by key, the way `redis-cli --cluster reshard` does
    /// (`SETSLOT IMPORTING`/`MIGRATING`, `GETKEYSINSLOT` + `MIGRATE`, `SETSLOT NODE`): clients see
    /// `ASK` while a slot migrates and `MOVED` after. Returns the slots moved.
    @discardableResult
    package func migrateSlots(ofKeysMatching pattern: String, from fromPort: Int, to toPort: Int, maxSlots: Int) async throws -> [Int] {
        let lines = try await clusterNodes()
        guard let from = lines.first(where: { $0.port == fromPort }), let to = lines.first(where: { $0.port == toPort }) else {
            throw LocalServicesError("migrate: unknown node")
        }
        let scanned = try await Self.redisCLI(["-p", "\(fromPort)", "--scan", "--pattern", pattern])
        var slots: [Int] = []
        for key in scanned.output.split(separator: "\n") where slots.count < maxSlots {
            let reply = try await Self.redisCLI(["-p", "\(fromPort)", "CLUSTER", "KEYSLOT", String(key)])
            if let slot = Int(reply.output.trimmingCharacters(in: .whitespacesAndNewlines)), !slots.contains(slot) { slots.append(slot) }
        }
        for slot in slots { try await moveSlot(slot, from: from, to: to, primaries: lines.filter { $0.flags.contains("master") && !$0.flags.contains("fail") }) }
        return slots
    }

    /// Moves one slot (with its keys, if any) from the primary at `fromPort` to the one at `toPort`.
    package func moveSlot(_ slot: Int, from fromPort: Int, to toPort: Int) async throws {
        let lines = try await clusterNodes()
        guard let from = lines.first(where: { $0.port == fromPort }), let to = lines.first(where: { $0.port == toPort }) else {
            throw LocalServicesError("move slot: unknown node")
        }
        try await moveSlot(slot, from: from, to: to, primaries: lines.filter { $0.flags.contains("master") && !$0.flags.contains("fail") })
    }

    private func moveSlot(_ slot: Int, from: ClusterNodeLine, to: ClusterNodeLine, primaries: [ClusterNodeLine]) async throws {
        let fromPort = from.port, toPort = to.port
        _ = try await Self.redisCLI(["-p", "\(toPort)", "CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", from.id])
        _ = try await Self.redisCLI(["-p", "\(fromPort)", "CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", to.id])
        while true {
            let keys = try await Self.redisCLI(["-p", "\(fromPort)", "CLUSTER", "GETKEYSINSLOT", "\(slot)", "100"])
            let names = keys.output.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            if names.isEmpty { break }
            let moved = try await Self.redisCLI(["-p", "\(fromPort)", "MIGRATE", "127.0.0.1", "\(toPort)", "", "0", "5000", "KEYS"] + names)
            guard moved.ok else { throw LocalServicesError("MIGRATE of slot \(slot) failed: \(moved.output.prefix(300))") }
        }
        for node in [to, from] + primaries.filter({ $0.id != to.id && $0.id != from.id }) {
            _ = try await Self.redisCLI(["-p", "\(node.port)", "CLUSTER", "SETSLOT", "\(slot)", "NODE", to.id])
        }
    }

    /// Kills the primary at `primaryPort` (SIGKILL: no goodbye to its clients' sockets beyond the
    /// kernel's reset) and waits until its replica has been promoted; returns the replica's port.
    package func killPrimary(port primaryPort: Int) async throws -> Int {
        // Every node agrees on the primary's replicas, and they are in sync (a replica that never
        // synced cannot be elected).
        try await waitUntilHealthy()
        let lines = try await clusterNodes(asking: primaryPort)
        guard let primary = lines.first(where: { $0.port == primaryPort }), primary.isPrimary,
              let replica = lines.first(where: { $0.primaryID == primary.id && $0.isLive }),
              let process = nodes.first(where: { $0.port == primaryPort }) else {
            throw LocalServicesError("no live replica of 127.0.0.1:\(primaryPort) to fail over to")
        }
        process.kill(signal: SIGKILL)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let now = try? await clusterNodes(asking: replica.port), now.first(where: { $0.port == replica.port })?.flags.contains("master") == true {
                return replica.port
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalServicesError("the replica 127.0.0.1:\(replica.port) was not promoted within 60 s of killing its primary")
    }

    /// Stops every node.
    package func stop() async {
        for node in nodes { await node.stop() }
    }

    /// Runs redis-cli; `ok` is a zero exit (and no `ERR` line for a plain command).
    package static func redisCLI(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> (ok: Bool, output: String) {
        let result = try await Subprocess.run(
            .name("redis-cli"), arguments: Arguments(arguments), input: .none,
            output: .string(limit: 1 << 22), error: .string(limit: 1 << 20)
        )
        let output = result.standardOutput + result.standardError
        let ok = result.terminationStatus == .exited(0) && !output.hasPrefix("ERR") && !output.contains("Could not connect")
        return (ok, output)
    }
}

/// One line of `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <primary-id> … <slot ranges>`.
package struct ClusterNodeLine: Sendable, Equatable {
    package var id: String
    package var port: Int
    package var flags: [String]
    /// The primary's id for a replica, `nil` for a primary.
    package var primaryID: String?
    /// The slot ranges a primary serves (`0-5460`, …).
    package var slots: [String]

    /// A primary (`master` flag).
    package var isPrimary: Bool { flags.contains("master") }

    /// Not failed, not unreachable by address, not still being introduced.
    package var isLive: Bool { !flags.contains { ["fail", "fail?", "noaddr", "handshake"].contains($0) } }

    init?(_ line: Substring) {
        let fields = line.split(separator: " ")
        guard fields.count >= 8 else { return nil }
        let address = fields[1].split(separator: "@")[0]
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        id = String(fields[0])
        self.port = port
        flags = fields[2].split(separator: ",").map(String.init)
        primaryID = fields[3] == "-" ? nil : String(fields[3])
        slots = fields.dropFirst(8).map(String.init)
    }
}
