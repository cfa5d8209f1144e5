import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
import Synchronization
import Testing

@Suite("RedisClient against a real redis-server", .sharedRedis)
struct ClientIntegrationTests {
    @Test("SET then GET round-trips binary values byte for byte, including 1 MiB")
    func binaryRoundTrip() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        defer { Task { await client.close() } }
        let prefix = TestRedis.uniquePrefix()
        let small: [UInt8] = [0, 13, 10, 0xFF, 0]
        try await client.set(prefix + "small", to: RedisArgument(bytes: small))
        #expect(try await client.get(prefix + "small").map { Array($0.readableBytesView) } == small)
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await client.set(prefix + "big", to: RedisArgument(bytes: big))
        #expect(try await client.get(prefix + "big").map { Array($0.readableBytesView) } == big)
        #expect(try await client.get(prefix + "missing") == nil)
        await client.close()
    }

    @Test("1,000 concurrent tasks share one connection and each gets its own reply")
    func pipelinesThousandTasksOnOneConnection() async throws {
        let name = "pipeline-\(UInt32.random(in: 0..<UInt32.max))"
        let client = try makeClient(try TestRedis.sharedURL, poolSize: 1, name: name)
        let prefix = TestRedis.uniquePrefix()
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<1_000 {
                group.addTask {
                    try await client.send("SET", RedisArgument(prefix + "\(index)"), RedisArgument("value-\(index)"))
                    let reply = try await client.send("GET", RedisArgument(prefix + "\(index)"))
                    return reply.string == "value-\(index)" ? 0 : 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        // Exactly one socket carried all 2,000 commands.
        let list = try await client.send("CLIENT", "LIST").string ?? ""
        #expect(list.split(separator: "\n").filter { $0.contains("name=\(name) ") }.count == 1)
        await client.close()
    }

    @Test("an error reply keeps Redis's message verbatim and the connection stays usable")
    func serverErrorsVerbatim() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let key = TestRedis.uniquePrefix() + "list"
        try await client.send("LPUSH", RedisArgument(key), "x")
        let error = await expectRedisError { try await client.send("GET", RedisArgument(key)) }
            #expect(error?.code == .server)
            #expect(error?.message == "WRONGTYPE Operation against a key holding the wrong kind of value")
            #expect(error?.serverErrorPrefix == "WRONGTYPE")
        #expect(try await client.ping() == "PONG")
        await client.close()
    }

    @Test("a pipeline sends several commands in one write and returns every reply in order, errors in place")
    func pipeline() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let key = TestRedis.uniquePrefix() + "p"
        let replies = try await client.send(pipeline: [
            RedisCommand("SET", RedisArgument(key), "1"),
            RedisCommand("INCR", RedisArgument(key)),
            RedisCommand("HGET", RedisArgument(key), "f"),
            RedisCommand("GET", RedisArgument(key)),
            RedisCommand("ECHO", RedisArgument(bytes: [0, 13, 10])),
        ])
        #expect(replies.count == 5)
        #expect(replies[0] == .simpleString("OK"))
        #expect(replies[1] == .integer(2))
        #expect(replies[2] == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(replies[3].string == "2")
        #expect(replies[4].bytes == [0, 13, 10])
        #expect(try await client.send(pipeline: [RedisCommand("TIME")]).first?.array?.count == 2)
        #expect(try await client.send(pipeline: [RedisCommand("HGET", RedisArgument(key), "f")]).first?.isNull == false)
        await client.close()
    }

    @Test("SELECT and CLIENT SETNAME are applied on connect")
    func selectAndSetName() async throws {
        var configuration = try RedisConfiguration(url: try TestRedis.sharedURL)
        configuration.database = 3
        configuration.clientName = "worker-7"
        let client = try RedisClient(configuration: configuration)
        #expect(try await client.send("CLIENT", "GETNAME").string == "worker-7")
        let info = try await client.send("CLIENT", "INFO").string ?? ""
        #expect(info.contains(" db=3 "))
        await client.close()
    }

    @Test("tasks running on the client's event loop executor get correct replies")
    func taskExecutorPreference() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let replies = try await withTaskExecutorPreference(client.taskExecutor) {
            var replies: [String] = []
            for index in 0..<100 { replies.append(try await client.send("ECHO", RedisArgument("e\(index)")).string ?? "") }
            return replies
        }
        #expect(replies == (0..<100).map { "e\($0)" })
        await client.close()
    }

    @Test("a cancelled caller fails with .cancelled at once and the connection keeps working")
    func cancellation() async throws {
        let name = "cancel-\(UInt32.random(in: 0..<UInt32.max))"
        let client = try makeClient(try TestRedis.sharedURL, name: name)
        let observer = try makeClient(try TestRedis.sharedURL)
        let key = TestRedis.uniquePrefix() + "never"
        try await client.ping()  // connected, so the BLPOP below is written at once
        let task = Task { try await client.send("BLPOP", RedisArgument(key), "10") }
        // Wait until the server has the BLPOP blocking.
        _ = try await eventually {
            let list = try await observer.send("CLIENT", "LIST").string ?? ""
            guard list.split(separator: "\n").contains(where: { $0.contains("name=\(name) ") && $0.contains("cmd=blpop") }) else {
                throw RedisError(code: .timeout, message: "not blocked yet")
            }
        }
        let started = ContinuousClock.now
        task.cancel()
        let error = await expectRedisError { _ = try await task.value }
        #expect(error?.code == .cancelled)
        #expect(ContinuousClock.now - started < .seconds(3))  // the BLPOP itself would block for 10 s
        // The BLPOP is still blocked on the server; unblock it from another client. Its late reply is
        // dropped and the next command on the same connection gets its own reply.
        try await observer.send("LPUSH", RedisArgument(key), "late")
        #expect(try await client.send("ECHO", "after").string == "after")
        #expect(try await client.send("LLEN", RedisArgument(key)).int == 0)  // the BLPOP did pop it
        await observer.close()
        await client.close()
    }

    @Test("pub/sub delivers messages to every subscription of a channel and to patterns")
    func pubSubDelivery() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let channel = TestRedis.uniquePrefix() + "events"
        let first = try await client.subscriber.subscribe(to: [channel])
        let second = try await client.subscriber.subscribe(to: [channel])
        let pattern = try await client.subscriber.subscribe(toPatterns: [channel.dropLast(6) + "*"])
        #expect(try await client.publish(RedisArgument(bytes: [1, 0, 2]), to: channel) == 2)  // one SUBSCRIBE + one PSUBSCRIBE
        for subscription in [first, second, pattern] {
            var iterator = subscription.makeAsyncIterator()
            guard case .message(let message) = await iterator.next() else { Issue.record("expected a message"); continue }
            #expect(message.channel == channel)
            #expect(Array(message.payload.readableBytesView) == [1, 0, 2])
        }
        await client.close()
    }

    @Test("connecting to a port with no server fails fast with a connection error, then backs off")
    func redisDown() async throws {
        // A backoff far longer than any scheduling delay on a loaded machine: the second call
        // certainly lands inside it.
        let client = try makeClient("redis://127.0.0.1:1", backoff: .init(initial: .seconds(60), maximum: .seconds(120)))
        let started = ContinuousClock.now
        let first = await expectRedisError { try await client.ping() }
        #expect(first?.code == .connection)
        let error = await expectRedisError { try await client.ping() }
        #expect(error?.code == .connection)
            #expect(error?.message.contains("backoff") == true)
        #expect(ContinuousClock.now - started < .seconds(30))  // no waiting out the 60 s backoff: the second call fails at once
        await client.close()
    }

    @Test("close() fails in-flight commands and never hangs; later commands fail with .shutdown")
    func closeWithInFlight() async throws {
        let name = "closing-\(UInt32.random(in: 0..<UInt32.max))"
        let client = try makeClient(try TestRedis.sharedURL, name: name)
        let key = TestRedis.uniquePrefix() + "block"
        try await client.ping()
        let admin = try makeClient(try TestRedis.sharedURL)
        let task = Task { try await client.send("BLPOP", RedisArgument(key), "10") }
        try await waitUntil("the BLPOP is blocked on the server") { try await isBlocked(name, admin: admin) }
        await client.close()
        await admin.close()
        await #expect(throws: RedisError.self) { try await task.value }
        let error = await expectRedisError { try await client.ping() }
        #expect(error?.code == .shutdown)
    }
}

@Suite("RedisClient under faults, each on its own redis-server")
struct ClientFaultTests {
    @Test("a wrong password fails with .authentication and Redis's message; the right one works")
    func authentication() async throws {
        var options = RedisServerOptions()
        options.password = "s3cret"
        try await withPrivateRedis(options) { server in
            let path = try #require(server.socketPath)
            let wrong = try makeClient("unix://\(path)?password=nope")
            let error = await expectRedisError { try await wrong.ping() }
                #expect(error?.code == .authentication)
                #expect(error?.message.hasPrefix("WRONGPASS") == true)
            await wrong.close()
            let none = try makeClient("unix://\(path)")
            let noAuth = await expectRedisError { try await none.ping() }
                #expect(noAuth?.code == .server)
                #expect(noAuth?.message.hasPrefix("NOAUTH") == true)
            await none.close()
            let right = try makeClient(server.url)
            #expect(try await right.ping() == "PONG")
            // ACL user + password.
            try await right.send("ACL", "SETUSER", "worker", "on", ">pw2", "~*", "+@all")
            let user = try makeClient("unix://\(path)?user=worker&password=pw2")
            #expect(try await user.send("ACL", "WHOAMI").string == "worker")
            await user.close()
            await right.close()
        }
    }

    @Test("a command past its timeout fails with .timeout; the next command uses a new connection")
    func commandTimeout() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url, commandTimeout: .milliseconds(200))
            // Only the PING below is held to the 200 ms timeout; the other commands get 10 s, so a
            // loaded machine cannot make them time out too.
            let idBefore = try await client.send("CLIENT", "ID", timeout: .seconds(10)).int
            let admin = try makeClient(server.url)
            // CLIENT PAUSE answers OK once the pause is in force: every later command waits until it
            // ends. 3 s leaves a loaded machine plenty of time to send the PING inside the pause.
            try await admin.send("CLIENT", "PAUSE", "3000", "ALL")
            // A .timeout (not a PONG after the pause) proves the command gave up at its deadline.
            let error = await expectRedisError { try await client.ping() }
            #expect(error?.code == .timeout)
            var idAfter: Int64?
            _ = try await eventually(within: .seconds(20)) { idAfter = try await client.send("CLIENT", "ID", timeout: .seconds(10)).int }  // once the pause ends
            #expect(idAfter != idBefore)
            await client.close()
            await admin.close()
        }
    }

    @Test("CLIENT KILL fails the in-flight command with .connection; the next command reconnects")
    func reconnectAfterClientKill() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url, name: "victim")
            let admin = try makeClient(server.url, name: "admin")
            let idBefore = try await client.send("CLIENT", "ID").int
            let blocked = Task { try await client.send("BLPOP", "nothing", "5") }
            try await waitUntil("the BLPOP is blocked on the server") { try await isBlocked("victim", admin: admin) }
            #expect(try await admin.send("CLIENT", "KILL", "TYPE", "normal").int ?? 0 >= 1)
            let error = await expectRedisError { _ = try await blocked.value }
                #expect(error?.code == .connection)
            let failedAttempts = try await eventually { try await client.ping() }
            #expect(failedAttempts == 0)
            #expect(try await client.send("CLIENT", "ID").int != idBefore)
            #expect(try await client.send("CLIENT", "GETNAME").string == "victim")
            await client.close()
            await admin.close()
        }
    }

    @Test("the subscriber resubscribes after its connection is killed and says messages may be missed")
    func resubscribeAfterKill() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            let admin = try makeClient(server.url)
            let subscription = try await client.subscriber.subscribe(to: ["jobs"])
            var iterator = subscription.makeAsyncIterator()
            #expect(try await admin.publish("one", to: "jobs") == 1)
            #expect(await iterator.next() == .message(RedisPubSubMessage(channel: "jobs", pattern: nil, payload: ByteBuffer(string: "one"))))
            #expect(try await admin.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)
            #expect(await iterator.next() == .reconnected)
            #expect(try await admin.publish("two", to: "jobs") == 1)
            #expect(await iterator.next() == .message(RedisPubSubMessage(channel: "jobs", pattern: nil, payload: ByteBuffer(string: "two"))))
            await client.close()
            await admin.close()
        }
    }

    @Test("after SCRIPT FLUSH, evalSHA reloads the script once and succeeds")
    func noscriptRecovery() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            let script = RedisScript(name: "incrby", source: "return redis.call('INCRBY', KEYS[1], ARGV[1])")
            #expect(try await client.evalSHA(script, keys: ["n"], args: ["2"]).int == 2)
            try await client.send("SCRIPT", "FLUSH")
            #expect(try await client.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)) == .array([.integer(0)]))
            #expect(try await client.evalSHA(script, keys: ["n"], args: ["3"]).int == 5)
            #expect(try await client.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)) == .array([.integer(1)]))
            // Our SHA-1 is the name Redis gives the script.
            #expect(try await client.send("SCRIPT", "LOAD", RedisArgument(script.source)).string == script.sha1)
            // A script error is a server error, verbatim.
            let broken = RedisScript(name: "broken", source: "return redis.error_reply('ERR stampede: bad input')")
            let error = await expectRedisError { try await client.evalSHA(broken) }
                #expect(error?.code == .server)
                #expect(error?.message == "ERR stampede: bad input")
            await client.close()
        }
    }

    @Test("after a server restart, commands, scripts and subscriptions recover")
    func serverRestart() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            let script = RedisScript(name: "echo", source: "return ARGV[1]")
            try await client.set("before", to: "x")
            #expect(try await client.evalSHA(script, args: ["a"]).string == "a")
            let subscription = try await client.subscriber.subscribe(to: ["restarts"])
            try await server.restart()
            // In-flight/next commands may fail with .connection once; then the client reconnects.
            _ = try await eventually { try await client.ping() }
            #expect(try await client.get("before") == nil)  // data is gone: no persistence
            #expect(try await client.evalSHA(script, args: ["b"]).string == "b")  // NOSCRIPT recovered
            var iterator = subscription.makeAsyncIterator()
            #expect(await iterator.next() == .reconnected)
            try await client.publish("after", to: "restarts")
            #expect(await iterator.next() == .message(RedisPubSubMessage(channel: "restarts", pattern: nil, payload: ByteBuffer(string: "after"))))
            await client.close()
        }
    }
}
