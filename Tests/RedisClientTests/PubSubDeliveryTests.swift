import RedisClient
import RedisServerProcess
import RedisTestSupport
import Synchronization
import Testing

@Suite("pub/sub delivery: overflow and keepalive, each on its own redis-server")
struct PubSubDeliveryTests {
    @Test("a consumer that falls 10,000 events behind is told in its stream how many were dropped, never silently")
    func overflowIsAnEvent() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            let admin = try makeClient(server.url)
            let channel = "flood"
            let subscription = try await client.subscriber.subscribe(to: [channel])  // not read until the end
            let counted = Atomic<Int>(0)
            _ = try await client.subscriber.subscribe(to: [channel], handler: { event in
                if case .message = event { counted.add(1, ordering: .relaxed) }
            }, onEnd: {})
            let total = RedisSubscriber.bufferLimit + 100
            for start in stride(from: 0, to: total, by: 1_000) {
                let commands = (start..<min(total, start + 1_000)).map { RedisCommand("PUBLISH", RedisArgument(channel), RedisArgument("m\($0)")) }
                _ = try await admin.send(pipeline: commands)
            }
            try await waitUntil("every message reached this process") { counted.load(ordering: .relaxed) == total }
            _ = try await admin.send("PUBLISH", RedisArgument(channel), "end")
            var received = 0
            var dropped = 0
            var overflowEvents = 0
            var events = subscription.makeAsyncIterator()
            // Read up to "end"; the losses its own arrival caused are reported with the next event,
            // so one more message follows once the buffer has room.
            func read(until marker: String) async {
                while let event = await events.next() {
                    switch event {
                    case .message(let message):
                        received += 1
                        if String(buffer: message.payload) == marker { return }
                    case .overflow(let count):
                        overflowEvents += 1
                        dropped += count
                    case .reconnected:
                        break
                    }
                }
            }
            await read(until: "end")
            _ = try await admin.send("PUBLISH", RedisArgument(channel), "tail")
            await read(until: "tail")
            received -= 1  // "tail" itself
            #expect(overflowEvents >= 1)
            #expect(received <= RedisSubscriber.bufferLimit)
            #expect(received + dropped == total + 1, "every message is either received or counted as dropped, exactly")
            await client.close()
            await admin.close()
        }
    }

    @Test("keepalive: a subscriber connection that stops answering is noticed by its PING, re-established, and the stream says .reconnected")
    func keepaliveNoticesADeadConnection() async throws {
        try await withPrivateRedis { server in
            var configuration = try RedisConfiguration(url: server.url)
            // The PING goes out within 1 s of the pause and times out 2 s later, well inside the 8 s
            // pause; the 2 s timeout leaves SUBSCRIBE room on a loaded machine (300 ms did not).
            configuration.subscriberKeepalive = .seconds(1)
            configuration.commandTimeout = .seconds(2)
            configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
            let client = try RedisClient(configuration: configuration, logger: TestRedis.logger)
            let admin = try makeClient(server.url)
            let subscription = try await client.subscriber.subscribe(to: ["quiet"])
            var events = subscription.makeAsyncIterator()
            // Nothing is published: only the keepalive PING can find out that the server stopped answering.
            try await admin.send("CLIENT", "PAUSE", "8000", "ALL")
            #expect(await events.next() == .reconnected)
            _ = try await admin.send("PUBLISH", "quiet", "after")
            #expect(await events.next() == .message(RedisPubSubMessage(channel: "quiet", payload: .init(string: "after"))))
            await client.close()
            await admin.close()
        }
    }
}
