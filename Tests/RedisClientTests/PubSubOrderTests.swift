import RedisClient
import RedisTestSupport
import Testing

@Suite("pub/sub against a real redis-server", .sharedRedis)
struct PubSubOrderTests {
    @Test("a channel dropped and subscribed again at once stays subscribed on the server, whichever of UNSUBSCRIBE and SUBSCRIBE goes out first")
    func resubscribeAfterUnsubscribe() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let admin = try makeClient(try TestRedis.sharedURL)
        let channel = "order:\(UInt32.random(in: 0..<UInt32.max))"
        for _ in 0..<100 {
            let first = try await client.subscriber.subscribe(handler: channel)
            // The drop and the new SUBSCRIBE race: either may reach the server first.
            async let second = client.subscriber.subscribe(handler: channel)
            client.subscriber.unsubscribe(listener: first, from: [channel])
            let secondID = try await second
            try await waitUntil("every UNSUBSCRIBE and any repair has gone out") { client.subscriber.commandsInFlight == 0 }
            let subscribers = try await admin.send("PUBSUB", "NUMSUB", RedisArgument(channel)).array?.last?.int
            #expect(subscribers == 1)
            client.subscriber.unsubscribe(listener: secondID, from: [channel])
            try await waitUntil("the last UNSUBSCRIBE has gone out") { client.subscriber.commandsInFlight == 0 }
        }
        await client.close()
        await admin.close()
    }
}

extension RedisSubscriber {
    /// A listener that ignores what it receives (the test looks at the server's view).
    fileprivate func subscribe(handler channel: String) async throws -> UInt64 {
        try await subscribe(to: [channel], handler: { _ in }, onEnd: {})
    }
}
