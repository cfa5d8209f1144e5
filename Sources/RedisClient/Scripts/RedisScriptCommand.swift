/// A call of one Lua script as a typed value: the script, the keys it touches, its arguments, and
/// how its reply is decoded.
///
/// Keys and arguments are kept apart (Redis's `KEYS` and `ARGV`) so the client knows, before
/// sending, which keys a call touches: that is what routes a call to the right node of a cluster and
/// what checks that a script's keys share one hash slot. A conforming type is built by the layer
/// that owns the script; the client runs it with ``RedisClient/execute(_:timeout:)``.
///
/// ```swift
/// struct IncrementBy: RedisScriptCommand {
///     static let script = RedisScript(name: "incr_by", source: "return redis.call('INCRBY', KEYS[1], ARGV[1])")
///     let keys: [RedisArgument]
///     let arguments: [RedisArgument]
///     init(_ key: String, by amount: Int) { keys = [RedisArgument(key)]; arguments = [RedisArgument(amount)] }
///     func decode(_ reply: RESPValue) throws(RedisError) -> Int64 {
///         guard let value = reply.int else { throw RedisError(code: .protocolError, message: "incr_by answered \(reply)") }
///         return value
///     }
/// }
/// let total = try await client.execute(IncrementBy("visits", by: 5))
/// ```
public protocol RedisScriptCommand: Sendable {
    /// What ``decode(_:)`` makes of the script's reply.
    associatedtype Response: Sendable

    /// The script this command runs.
    static var script: RedisScript { get }

    /// The keys the script touches (`KEYS[1…]`), in the order the script reads them.
    var keys: [RedisArgument] { get }

    /// The script's other arguments (`ARGV[1…]`).
    var arguments: [RedisArgument] { get }

    /// Decodes the script's reply; a reply of the wrong shape throws ``RedisError/Code/protocolError``
    /// naming the script and the reply.
    func decode(_ reply: RESPValue) throws(RedisError) -> Response
}

extension RedisScriptCommand {
    /// The `EVALSHA` command this call sends: the script's SHA-1, the number of keys, the keys, the arguments.
    public var evalSHACommand: RedisCommand {
        var command = RedisCommand("EVALSHA", RedisArgument(Self.script.sha1), RedisArgument(keys.count))
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }

    /// A protocol error for a reply of the wrong shape, naming the script and the reply.
    public func unexpectedReply(_ reply: RESPValue) -> RedisError {
        RedisError(code: .protocolError, message: "unexpected reply from \(Self.script.name).lua: \(reply)")
    }
}

extension RedisClient {
    /// Runs a typed script call with `EVALSHA` and decodes its reply. If Redis answers `NOSCRIPT`
    /// (after a restart, failover or `SCRIPT FLUSH`), loads the script and retries **once**.
    ///
    /// - Throws: ``RedisError``: a Lua `redis.error_reply` as ``RedisError/Code/server`` with the
    ///   server's message verbatim; a reply ``RedisScriptCommand/decode(_:)`` rejects as
    ///   ``RedisError/Code/protocolError``.
    @discardableResult
    public func execute<Command: RedisScriptCommand>(_ command: Command, timeout: Duration? = nil) async throws(RedisError) -> Command.Response {
        let reply = try await evalSHA(Command.script, command: command.evalSHACommand, timeout: timeout)
        return try command.decode(reply)
    }
}
