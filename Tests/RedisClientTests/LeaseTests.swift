import RedisClient
import RedisTestSupport
import Testing

@Suite("exclusive leases against a real redis-server", .sharedRedis)
struct LeaseTests {
    @Test("withConnection leases a connection of its own for MULTI/EXEC, and reuses it for the next lease")
    func transactionOnALease() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let key = "lease:\(UInt32.random(in: 0..<UInt32.max))"
        let shared = try await client.send("CLIENT", "ID").int
        let (replies, leased) = try await client.withConnection { connection in
            let replies = try await connection.send(pipeline: [RedisCommand("MULTI"), RedisCommand("INCR", RedisArgument(key)), RedisCommand("INCR", RedisArgument(key)), RedisCommand("EXEC")])
            return (replies, try await connection.send(RedisCommand("CLIENT", "ID")).int)
        }
        #expect(replies.last == .array([.integer(1), .integer(2)]))
        #expect(leased != shared)
        let again = try await client.withConnection { try await $0.send(RedisCommand("CLIENT", "ID")).int }
        #expect(again == leased)
        await client.close()
    }

    @Test("a cancelled BLPOP on a lease closes it: an element pushed afterwards is still in the list")
    func cancelledBlockingPopConsumesNothing() async throws {
        let name = "leaser-\(UInt32.random(in: 0..<UInt32.max))"
        let client = try makeClient(try TestRedis.sharedURL, name: name)
        let admin = try makeClient(try TestRedis.sharedURL)
        let key = "lease:q:\(UInt32.random(in: 0..<UInt32.max))"
        let popping = Task {
            try await client.withConnection { try await $0.send(RedisCommand("BLPOP", RedisArgument(key), "0"), timeout: .seconds(3600)) }
        }
        try await waitUntil("the BLPOP is blocked on the server") { try await isBlocked(name, admin: admin) }
        popping.cancel()
        do {
            _ = try await popping.value
            Issue.record("the cancelled BLPOP returned")
        } catch let error as RedisError {
            #expect(error.code == .cancelled)
        }
        try await waitUntil("the server dropped the blocked client") { try await !isBlocked(name, admin: admin) }
        _ = try await admin.send("RPUSH", RedisArgument(key), "element")
        #expect(try await admin.send("LLEN", RedisArgument(key)).int == 1)
        _ = try await admin.send("DEL", RedisArgument(key))
        await client.close()
        await admin.close()
    }
}
