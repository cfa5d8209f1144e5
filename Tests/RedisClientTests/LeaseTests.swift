import RedisClient
import RedisTestSupport
import Testing

@Suite("exclusive leases against a real redis-server", .sharedRedis)
struct LeaseTests {
    private func until(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("never happened: \(what)")
    }

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
        let client = try makeClient(try TestRedis.sharedURL)
        let admin = try makeClient(try TestRedis.sharedURL)
        let key = "lease:q:\(UInt32.random(in: 0..<UInt32.max))"
        let blockedBefore = try await blockedClients(admin)
        let popping = Task {
            try await client.withConnection { try await $0.send(RedisCommand("BLPOP", RedisArgument(key), "0"), timeout: .seconds(3600)) }
        }
        try await until("the BLPOP is blocked on the server") { try await blockedClients(admin) == blockedBefore + 1 }
        popping.cancel()
        do {
            _ = try await popping.value
            Issue.record("the cancelled BLPOP returned")
        } catch let error as RedisError {
            #expect(error.code == .cancelled)
        }
        try await until("the server dropped the blocked client") { try await blockedClients(admin) == blockedBefore }
        _ = try await admin.send("RPUSH", RedisArgument(key), "element")
        #expect(try await admin.send("LLEN", RedisArgument(key)).int == 1)
        _ = try await admin.send("DEL", RedisArgument(key))
        await client.close()
        await admin.close()
    }

    private func blockedClients(_ admin: RedisClient) async throws -> Int {
        let info = try await admin.send("INFO", "clients").string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("blocked_clients:") {
            return Int(line.dropFirst("blocked_clients:".count)) ?? -1
        }
        return -1
    }
}
