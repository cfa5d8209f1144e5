import Glibc
import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
import Synchronization
import Testing

/// A command's ``ReplyFollowUp`` runs exactly once, on every path: the read batcher frees a lone
/// read's slot with it, so a path that skipped it would leak the slot and one that ran it twice
/// would let more reads out than the pool allows.
@Suite("reply follow-ups run exactly once on every path", .sharedRedis)
struct ReplyFollowUpTests {
    /// Counts its calls.
    final class Counter: ReplyFollowUp {
        let calls = Atomic<Int>(0)
        func replyDelivered() { calls.add(1, ordering: .relaxed) }
        var count: Int { calls.load(ordering: .relaxed) }
    }

    private static func encoded(_ command: RedisCommand) -> ByteBuffer { RESPEncoder.encode(command) }

    @Test("a reply, an error reply, a pipeline with an error inside, and a client closed before sending each run the follow-up exactly once, before the caller is resumed")
    func onceForRepliesErrorsAndAClosedClient() async throws {
        let client = try makeClient(try TestRedis.sharedURL, poolSize: 1)
        let key = TestRedis.uniquePrefix() + "text"
        _ = try await client.send("SET", RedisArgument(key), "not a number")
        let reply = Counter(), failure = Counter(), pipeline = Counter(), closed = Counter()

        #expect(try await client.send(encoded: Self.encoded(RedisCommand("PING")), timeout: nil, followUp: reply).string == "PONG")
        let error = await expectRedisError { try await client.send(encoded: Self.encoded(RedisCommand("INCR", RedisArgument(key))), timeout: nil, followUp: failure) }
        #expect(error?.code == .server)
        var both = Self.encoded(RedisCommand("PING"))
        var second = Self.encoded(RedisCommand("INCR", RedisArgument(key)))
        both.writeBuffer(&second)
        let replies = try await client.send(encoded: both, timeout: nil, replies: 2, followUp: pipeline)
        #expect(replies.array?.count == 2)
        // A follow-up runs before its caller is resumed: each ran by the time its call returned.
        #expect(reply.count == 1)
        #expect(failure.count == 1)
        #expect(pipeline.count == 1)

        await client.close()
        let shutdown = await expectRedisError { try await client.send(encoded: Self.encoded(RedisCommand("PING")), timeout: nil, followUp: closed) }
        #expect(shutdown?.code == .shutdown)
        #expect(closed.count == 1)
    }

    @Test("a command cancelled while Redis is frozen, and one that times out, each run the follow-up exactly once, before the caller is resumed; the late reply runs it no more")
    func onceForCancellationAndTimeout() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url, poolSize: 1, commandTimeout: .seconds(120))
            #expect(try await client.send("PING").string == "PONG")  // connected before the freeze
            let cancelled = Counter(), timedOut = Counter()
            server.kill(signal: SIGSTOP)
            let waiting = Task { try await client.send(encoded: Self.encoded(RedisCommand("PING")), timeout: nil, followUp: cancelled) }
            waiting.cancel()
            let error = await expectRedisError { try await waiting.value }
            #expect(error?.code == .cancelled)
            #expect(cancelled.count == 1, "it ran before the caller was resumed")

            let slow = await expectRedisError {
                try await client.send(encoded: Self.encoded(RedisCommand("PING")), timeout: .milliseconds(100), followUp: timedOut)
            }
            #expect(slow?.code == .timeout)
            #expect(timedOut.count == 1)
            server.kill(signal: SIGCONT)
            // A new connection works; the frozen one was discarded with both commands on it.
            #expect(try await client.send("PING").string == "PONG")
            #expect(cancelled.count == 1)
            #expect(timedOut.count == 1)
            await client.close()
        }
    }
}
