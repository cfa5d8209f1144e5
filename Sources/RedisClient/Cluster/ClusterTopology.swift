/// Which primary serves each of the 16384 hash slots, as `CLUSTER SHARDS` (Redis 7+, Valkey) or
/// `CLUSTER SLOTS` (older servers) describe it. A value type: the router swaps in a new one on a
/// refresh and patches one slot on a `MOVED`.
package struct ClusterTopology: Sendable, Equatable {
    /// The primaries, in the order first seen; `owners` holds indexes into it.
    package private(set) var primaries: [RedisConfiguration.Endpoint]
    /// The replicas of each primary (same order as ``primaries``), for logs and `config check`.
    package private(set) var replicas: [[RedisConfiguration.Endpoint]]
    /// Per slot, the index of its primary in ``primaries``, or -1 when no node serves it.
    private var owners: [Int16]

    /// A topology with no slot assigned.
    package init() {
        primaries = []
        replicas = []
        owners = Array(repeating: -1, count: HashSlot.count)
    }

    /// The primary serving `slot`, if any.
    package func primary(forSlot slot: Int) -> RedisConfiguration.Endpoint? {
        guard (0..<HashSlot.count).contains(slot) else { return nil }
        let index = Int(owners[slot])
        return index >= 0 ? primaries[index] : nil
    }

    /// How many slots have a primary (16384 when the cluster is fully covered).
    package var coveredSlots: Int { owners.lazy.filter { $0 >= 0 }.count }

    /// Records that `slot` is now served by `endpoint` (after a `MOVED`).
    package mutating func assign(slot: Int, to endpoint: RedisConfiguration.Endpoint) {
        guard (0..<HashSlot.count).contains(slot) else { return }
        owners[slot] = Int16(index(of: endpoint))
    }

    private mutating func index(of endpoint: RedisConfiguration.Endpoint) -> Int {
        if let existing = primaries.firstIndex(of: endpoint) { return existing }
        primaries.append(endpoint)
        replicas.append([])
        return primaries.count - 1
    }

    private mutating func assign(range: ClosedRange<Int>, to endpoint: RedisConfiguration.Endpoint, replicas nodeReplicas: [RedisConfiguration.Endpoint]) {
        let owner = Int16(index(of: endpoint))
        replicas[Int(owner)] = nodeReplicas
        for slot in range where (0..<HashSlot.count).contains(slot) { owners[slot] = owner }
    }

    /// Parses a `CLUSTER SLOTS` reply: `[[start, end, [ip, port, id, …], [replica ip, port, …], …], …]`.
    /// An empty ip means "the node you asked" (`queried`).
    package static func parse(slots reply: RESPValue, queried: RedisConfiguration.Endpoint) throws(RedisError) -> ClusterTopology {
        guard let ranges = reply.array else { throw malformed("CLUSTER SLOTS", reply) }
        var topology = ClusterTopology()
        for range in ranges {
            guard let items = range.array, items.count >= 3, let start = items[0].int, let end = items[1].int, start <= end,
                  let primary = endpoint(items[2], queried: queried)
            else { throw malformed("CLUSTER SLOTS", range) }
            let nodeReplicas = items.dropFirst(3).compactMap { endpoint($0, queried: queried) }
            topology.assign(range: Int(start)...Int(end), to: primary, replicas: nodeReplicas)
        }
        return topology
    }

    private static func endpoint(_ node: RESPValue, queried: RedisConfiguration.Endpoint) -> RedisConfiguration.Endpoint? {
        guard let fields = node.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].int,
              (1...65535).contains(port) else { return nil }
        if host.isEmpty || host == "?" {
            if case .tcp(let queriedHost, _) = queried { return .tcp(host: queriedHost, port: Int(port)) }
            return nil
        }
        return .tcp(host: host, port: Int(port))
    }

    /// Parses a `CLUSTER SHARDS` reply (RESP2): per shard `["slots", [start, end, …], "nodes",
    /// [[name, value, …], …]]`; the node whose `role` is `master` and `health` is not `fail` serves the slots.
    package static func parse(shards reply: RESPValue, queried: RedisConfiguration.Endpoint, tls: Bool) throws(RedisError) -> ClusterTopology {
        guard let shards = reply.array else { throw malformed("CLUSTER SHARDS", reply) }
        var topology = ClusterTopology()
        for shard in shards {
            let fields = map(shard)
            guard let slotList = fields["slots"]?.array, let nodes = fields["nodes"]?.array else { throw malformed("CLUSTER SHARDS", shard) }
            var primary: RedisConfiguration.Endpoint?
            var nodeReplicas: [RedisConfiguration.Endpoint] = []
            for node in nodes {
                let node = map(node)
                let portField = tls ? (node["tls-port"] ?? node["port"]) : (node["port"] ?? node["tls-port"])
                guard let port = portField?.int, (1...65535).contains(port) else { continue }
                var host = node["ip"]?.string ?? node["endpoint"]?.string ?? ""
                if host.isEmpty || host == "?", case .tcp(let queriedHost, _) = queried { host = queriedHost }
                guard !host.isEmpty else { continue }
                let endpoint = RedisConfiguration.Endpoint.tcp(host: host, port: Int(port))
                let health = node["health"]?.string ?? "online"
                if node["role"]?.string == "master", health != "fail", health != "failed" {
                    primary = endpoint
                } else if node["role"]?.string != "master" {
                    nodeReplicas.append(endpoint)
                }
            }
            guard let primary, slotList.count.isMultiple(of: 2) else { continue }  // a shard without slots or live primary
            var index = 0
            while index < slotList.count {
                guard let start = slotList[index].int, let end = slotList[index + 1].int, start <= end else { throw malformed("CLUSTER SHARDS", shard) }
                topology.assign(range: Int(start)...Int(end), to: primary, replicas: nodeReplicas)
                index += 2
            }
        }
        return topology
    }

    /// A flat `[name, value, name, value, …]` array (RESP2's form of a map) as a dictionary.
    private static func map(_ value: RESPValue) -> [String: RESPValue] {
        guard let items = value.array else { return [:] }
        var result: [String: RESPValue] = [:]
        var index = 0
        while index + 1 < items.count {
            if let name = items[index].string { result[name] = items[index + 1] }
            index += 2
        }
        return result
    }

    private static func malformed(_ command: String, _ reply: RESPValue) -> RedisError {
        RedisError(code: .protocolError, message: "unexpected \(command) reply: \(String(describing: reply).prefix(200))")
    }
}
