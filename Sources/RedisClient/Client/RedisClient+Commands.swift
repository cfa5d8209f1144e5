public import NIOCore

/// Typed helpers for the commands the cache and tools use. Anything else: ``RedisClient/send(_:timeout:)``.
extension RedisClient {
    /// `PING`: returns `PONG`.
    @discardableResult
    public func ping() async throws(RedisError) -> String {
        let reply = try await send(RedisCommand("PING"))
        guard reply.string == "PONG" else {
            throw RedisError(code: .protocolError, message: "PING was answered with \(String(describing: reply).prefix(80)), not PONG: this is not a Redis server, or a proxy in between changes replies")
        }
        return "PONG"
    }

    /// `GET key`: the value's bytes, or `nil` if the key does not exist.
    public func get(_ key: String) async throws(RedisError) -> ByteBuffer? {
        let reply = try await send(RedisCommand("GET", RedisArgument(key)))
        switch reply {
        case .bulkString(let buffer): return buffer
        case .null: return nil
        default: throw RedisError(code: .protocolError, message: "GET returned \(reply)")
        }
    }

    /// `SET key value [PX ms]`.
    public func set(_ key: String, to value: RedisArgument, expiresIn: Duration? = nil) async throws(RedisError) {
        var command = RedisCommand("SET", RedisArgument(key), value)
        if let expiresIn {
            command.append("PX")
            command.append(RedisArgument(max(1, expiresIn.nanosecondsClamped / 1_000_000)))
        }
        try await send(command)
    }

    /// `DEL key...`: how many keys were removed.
    @discardableResult
    public func delete(_ keys: [String]) async throws(RedisError) -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await send(RedisCommand("DEL", keys.map { RedisArgument($0) })).int ?? 0)
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    @discardableResult
    public func publish(_ message: RedisArgument, to channel: String) async throws(RedisError) -> Int {
        Int(try await send(RedisCommand("PUBLISH", RedisArgument(channel), message)).int ?? 0)
    }

    /// `SPUBLISH channel message` (sharded pub/sub, Redis 7+): sent to the node serving the
    /// channel's slot; returns how many subscribers of that shard received it.
    public func spublish(_ message: RedisArgument, to channel: String) async throws(RedisError) -> Int {
        Int(try await send(RedisCommand("SPUBLISH", RedisArgument(channel), message)).int ?? 0)
    }

    /// Walks every key matching the glob `pattern` with `SCAN` (which never blocks Redis as `KEYS`
    /// does), handing each non-empty batch to `body` until the scan ends or `body` returns `false`.
    /// A key may be seen twice if the keyspace is rehashed meanwhile (SCAN's own guarantee). On a
    /// cluster every primary is scanned in turn.
    public func scanKeys(matching pattern: String, count: Int = 1000, _ body: ([String]) async throws -> Bool) async throws {
        let nodes: [RedisConfiguration.Endpoint?] = try await isCluster() ? try await primaries().map { $0 } : [nil]
        for node in nodes {
            guard try await scanKeys(on: node, matching: pattern, count: count, body) else { return }
        }
    }

    /// Scans one node (`nil`: the standalone server); returns `false` when `body` asked to stop.
    private func scanKeys(on node: RedisConfiguration.Endpoint?, matching pattern: String, count: Int, _ body: ([String]) async throws -> Bool) async throws -> Bool {
        var cursor = "0"
        repeat {
            let command = RedisCommand("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", RedisArgument(count))
            let answer: RESPValue
            if let node { answer = try await send(command, to: node) } else { answer = try await send(command) }
            let reply = answer.array ?? []
            guard let next = reply.first?.string, reply.count == 2 else {
                throw RedisError(code: .protocolError, message: "unexpected SCAN reply: \(String(describing: reply).prefix(80))")
            }
            cursor = next
            let keys = (reply[1].array ?? []).compactMap(\.string)
            if !keys.isEmpty, try await !body(keys) { return false }
        } while cursor != "0"
        return true
    }
}
