import Crypto

/// A Lua script and its SHA-1, computed locally, ready for `EVALSHA`.
///
/// ```swift
/// let script = RedisScript(name: "incr_by", source: "return redis.call('INCRBY', KEYS[1], ARGV[1])")
/// let reply = try await client.evalSHA(script, keys: ["counter"], args: ["5"])
/// ```
public struct RedisScript: Sendable, Hashable {
    /// A short name for logs and metrics.
    public let name: String
    /// The Lua source, exactly as sent with `SCRIPT LOAD`.
    public let source: String
    /// The lowercase hex SHA-1 of ``source``: the name Redis gives the script.
    public let sha1: String

    /// A script from its source; the SHA-1 is computed here.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

extension RedisClient {
    /// Runs `script` with `EVALSHA`. If Redis answers `NOSCRIPT` (after a restart, failover or
    /// `SCRIPT FLUSH`), loads it with `SCRIPT LOAD` and retries **once**; never loops.
    ///
    /// - Returns: the script's reply. A Lua `redis.error_reply` is thrown as ``RedisError/Code/server``.
    @discardableResult
    public func evalSHA(_ script: RedisScript, keys: [RedisArgument] = [], args: [RedisArgument] = [], timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        var command = RedisCommand("EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count))
        for key in keys { command.append(key) }
        for arg in args { command.append(arg) }
        return try await evalSHA(script, command: command, timeout: timeout)
    }

    /// Sends an already built `EVALSHA` of `script`; on `NOSCRIPT` loads the script and resends once.
    func evalSHA(_ script: RedisScript, command: RedisCommand, timeout: Duration?) async throws(RedisError) -> RESPValue {
        do {
            return try await send(command, timeout: timeout)
        } catch where error.code == .server && error.message.hasPrefix("NOSCRIPT") {
            metrics.noscriptReloads.increment()
            logger.info("script missing on the server; loading it", metadata: ["script": "\(script.name)", "sha1": "\(script.sha1)"])
            try await load(script)
            return try await send(command, timeout: timeout)
        }
    }

    /// Loads `script` with `SCRIPT LOAD` and checks that Redis names it with the same SHA-1. On a
    /// cluster it is loaded on every primary (each node keeps its own script cache).
    public func load(_ script: RedisScript) async throws(RedisError) {
        for reply in try await sendToEveryPrimary(RedisCommand("SCRIPT", "LOAD", RedisArgument(script.source))) {
            guard reply.string == script.sha1 else {
                throw RedisError(code: .protocolError, message: "SCRIPT LOAD of \(script.name) returned \(reply), expected \(script.sha1)")
            }
        }
    }

    /// Loads several scripts at once (pipelined), e.g. at startup so the first calls need no reload.
    public func preload(_ scripts: [RedisScript]) async throws(RedisError) {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for script in scripts {
                    group.addTask { try await self.load(script) }
                }
                try await group.waitForAll()
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "\(error)")
        }
    }
}
