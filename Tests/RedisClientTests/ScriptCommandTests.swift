import NIOCore
import RedisClient
import RedisTestSupport
import Testing

/// A typed call of a script that echoes what it was given: its keys, its arguments, and their counts.
private struct EchoKeysAndArguments: RedisScriptCommand {
    static let script = RedisScript(name: "echo_keys_args", source: "return {#KEYS, #ARGV, KEYS[1], ARGV[1], ARGV[2]}")
    let keys: [RedisArgument]
    let arguments: [RedisArgument]

    init(key: String, _ first: String, _ second: Int) {
        keys = [RedisArgument(key)]
        arguments = [RedisArgument(first), RedisArgument(second)]
    }

    func decode(_ reply: RESPValue) throws(RedisError) -> [String] {
        guard let items = reply.array, items.count == 5 else { throw unexpectedReply(reply) }
        return items.map { $0.string ?? $0.int.map(String.init) ?? "?" }
    }
}

/// A call whose decoder accepts only an integer, to prove a wrong shape is a protocol error.
private struct ExpectsInteger: RedisScriptCommand {
    static let script = RedisScript(name: "answers_text", source: "return 'not a number'")
    var keys: [RedisArgument] { [] }
    var arguments: [RedisArgument] { [] }
    func decode(_ reply: RESPValue) throws(RedisError) -> Int64 {
        guard let value = reply.int else { throw unexpectedReply(reply) }
        return value
    }
}

/// A call of a script that refuses with `redis.error_reply`.
private struct Refuses: RedisScriptCommand {
    static let script = RedisScript(name: "refuses", source: "return redis.error_reply('ERR refused: ARGV[1] was ' .. ARGV[1])")
    var keys: [RedisArgument] { [] }
    let arguments: [RedisArgument]
    func decode(_ reply: RESPValue) throws(RedisError) -> RESPValue { reply }
}

@Suite("Typed script commands", .sharedRedis)
struct ScriptCommandTests {
    @Test("a typed call sends its keys as KEYS and its arguments as ARGV, in order, and decodes the reply")
    func keysAndArgumentsReachTheScript() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let command = EchoKeysAndArguments(key: "the-key", "first", 42)
        let sent = command.evalSHACommand.arguments.map { String(decoding: $0, as: UTF8.self) }
        #expect(command.evalSHACommand.name == "EVALSHA")
        #expect(sent == [EchoKeysAndArguments.script.sha1, "1", "the-key", "first", "42"])
        #expect(try await client.execute(command) == ["1", "2", "the-key", "first", "42"])
        await client.close()
    }

    @Test("after SCRIPT FLUSH a typed call loads its script once and succeeds")
    func reloadsAfterFlush() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            _ = try await client.execute(EchoKeysAndArguments(key: "k", "a", 1))
            _ = try await client.send("SCRIPT", "FLUSH")
            #expect(try await client.send("SCRIPT", "EXISTS", RedisArgument(EchoKeysAndArguments.script.sha1)).array?.first?.int == 0)
            #expect(try await client.execute(EchoKeysAndArguments(key: "k", "b", 2)) == ["1", "2", "k", "b", "2"])
            #expect(try await client.send("SCRIPT", "EXISTS", RedisArgument(EchoKeysAndArguments.script.sha1)).array?.first?.int == 1)
            await client.close()
        }
    }

    @Test("a reply of the wrong shape is a protocol error naming the script and the reply")
    func wrongShapeIsAProtocolError() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let error = await #expect(throws: RedisError.self) { try await client.execute(ExpectsInteger()) }
        #expect(error?.code == .protocolError)
        #expect(error?.message == "unexpected reply from answers_text.lua: \(RESPValue.bulkString(ByteBuffer(string: "not a number")))")
        await client.close()
    }

    @Test("a script's error_reply reaches the caller as a server error with its message verbatim")
    func scriptErrorIsVerbatim() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let error = await #expect(throws: RedisError.self) { try await client.execute(Refuses(arguments: ["7"])) }
        #expect(error?.code == .server)
        #expect(error?.message == "ERR refused: ARGV[1] was 7")
        await client.close()
    }
}
