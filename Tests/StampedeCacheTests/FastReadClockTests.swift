import NIOCore
import RedisClient
import RedisTestSupport
@testable import StampedeCache
import Testing

/// The fast read decides freshness on the server's clock. A plain `GET` sent on a clock sample that
/// expired before its reply arrived is judged on a `TIME` sent after it, never read again.
@Suite("the fast read's server clock")
struct FastReadClockTests {
    /// The commands the server ran, oldest first, by name, from a slow log that logs every command.
    private func ran(_ admin: RedisClient, among names: Set<String>) async throws -> [String] {
        let entries = try await admin.send("SLOWLOG", "GET", "1000").array ?? []
        return entries.reversed().compactMap { $0.array?[3].array?.first?.string?.uppercased() }.filter(names.contains)
    }

    @Test("a GET sent on a clock sample that expires before its reply arrives (the server paused 3 s, the sample had 2 s left) is judged on one TIME sent after it: the server runs GET then TIME, no second GET; the entry is judged at that TIME, which becomes the clock's sample")
    func sampleExpiringWhileTheReadIsOut() async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url)
            let admin = try makeClient(server.url)
            let keys = EntryKeys(id: "clock:\(UInt32.random(in: 0..<UInt32.max))")
            let serverNow = try FastRead.millis(time: try await client.send("TIME"))
            try await admin.send("SET", RedisArgument(keys.value), RedisArgument("sc2 \(serverNow + 60_000) \(serverNow + 120_000) \(serverNow) 5 1\nvalue"))
            try await admin.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
            try await admin.send("SLOWLOG", "RESET")

            // A sample taken 8 s ago that is used for 10 s: 2 s left.
            let clock = ServerClock()
            clock.setLifetime(.seconds(10))
            // However slow the loaded machine's round trips, the TIME after the read is a sample.
            clock.setMaximumUncertainty(.seconds(2))
            let takenAt = ContinuousClock.now - .seconds(8)
            clock.record(serverMillis: serverNow - 8_000, sent: takenAt, received: takenAt)
            let batcher = ReadBatcher(redis: client, limit: 16, clock: clock)
            // Every client waits 3 s for its next command; the read is sent at once, on the sample.
            try await admin.send("CLIENT", "PAUSE", "3000", "ALL")
            try #require(clock.upperBound(at: .now) != nil, "the machine took 2 s to get here: nothing is tested")
            let read = try await client.fastRead(keys, clock: clock, cluster: false, batcher: batcher)

            #expect(try await ran(admin, among: ["GET", "MGET", "TIME"]) == ["GET", "TIME"])
            guard case .entry(let stored) = read else {
                Issue.record("expected the stored entry, got \(read)")
                return
            }
            #expect(String(buffer: stored.value) == "value")
            #expect(stored.now >= serverNow + 3_000, "judged at the TIME after the pause, not at the expired sample's bound")
            #expect(stored.isFresh)
            #expect(clock.upperBound(at: .now) != nil, "the TIME became the clock's sample")
            await admin.close()
            await client.close()
        }
    }
}
