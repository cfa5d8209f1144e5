import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Testing

/// Lookups read the entry first (a `GET`) while at least 8 of the cache's last 16 found a fresh
/// entry, and go straight to `get_or_lock` otherwise: one round trip per miss instead of two.
@Suite("StampedeCache: reading first, or asking the script at once")
struct LookupHistoryTests {
    @Test("the history starts reading first, stops after the 9th lookup that found nothing, and reads again after 8 that found fresh entries")
    func historyCounts() {
        let history = LookupHistory()
        #expect(history.readsFirst)
        for miss in 1...9 {
            history.record(foundFresh: false)
            #expect(history.readsFirst == (miss < 9), "after \(miss) misses")
        }
        for found in 1...8 {
            #expect(!history.readsFirst, "after \(found - 1) fresh finds")
            history.record(foundFresh: true)
        }
        #expect(history.readsFirst)
        // Only the last 16 count: 16 finds, then 8 misses still read first; the 9th does not.
        for _ in 0..<16 { history.record(foundFresh: true) }
        for _ in 0..<8 { history.record(foundFresh: false) }
        #expect(history.readsFirst)
        history.record(foundFresh: false)
        #expect(!history.readsFirst)
    }

    /// The commands the server ran, by name (scripts' own calls included), from the slow log of a
    /// server that logs every command; the namespace generation's reads are left out.
    private func sentCommands(_ admin: RedisClient, generationKey: String) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in try await admin.send("SLOWLOG", "GET", "100000").array ?? [] {
            guard let arguments = entry.array?[3].array?.compactMap(\.string), let name = arguments.first?.uppercased() else { continue }
            if name == "GET", arguments.dropFirst().first == generationKey { continue }
            counts[name, default: 0] += 1
        }
        return counts
    }

    @Test("20 misses then 10 hits, one caller: misses 10–20 each send one GET fewer than misses 3–9 (the server's slow log), hits 1–8 ask get_or_lock and hits 9 and 10 read first again (exact EVALSHA counts); every answer's source is unchanged")
    func missesGoStraightToTheScript() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy(), backgroundLoop: false)
            let admin = try makeClient(server.url)
            let generationKey = worker.cache.keySpace.generationKey
            // Every command is logged, top-level or run by a script (a script's run is the
            // EVALSHA entry; its own calls have entries of their own).
            try await admin.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
            try await admin.send("CONFIG", "SET", "slowlog-max-len", "100000")
            let upstream = Upstream()
            var readFirst: [String: Int] = [:]
            let cache = worker.cache
            for index in 1...20 {
                if index == 3 || index == 10 { try await admin.send("SLOWLOG", "RESET") }
                let result = try await cache.value(for: "miss-\(index)", compute: upstream.compute("v\(index)"))
                #expect(result.source == .computed)
                if index == 9 {
                    readFirst = try await sentCommands(admin, generationKey: generationKey)
                    #expect(cache.diagnostics.scriptFirstLookups == 0)
                }
            }
            let scriptFirst = try await sentCommands(admin, generationKey: generationKey)
            #expect(worker.cache.diagnostics.scriptFirstLookups == 11)
            let summary = "read first: \(readFirst); script first: \(scriptFirst)"
            let scriptsReadFirst = readFirst["EVALSHA", default: 0], scriptsScriptFirst = scriptFirst["EVALSHA", default: 0]
            #expect(scriptsReadFirst == 14, "get_or_lock and the commit per miss: \(summary)")
            #expect(scriptsScriptFirst == 22, "get_or_lock and the commit per miss: \(summary)")
            let getsReadFirst = readFirst["GET", default: 0], getsScriptFirst = scriptFirst["GET", default: 0]
            #expect(getsReadFirst % 7 == 0, "every miss runs the same commands: \(summary)")
            #expect(getsScriptFirst % 11 == 0, "every miss runs the same commands: \(summary)")
            let perReadFirstMiss = getsReadFirst / 7, perScriptFirstMiss = getsScriptFirst / 11
            #expect(perReadFirstMiss == perScriptFirstMiss + 1, "one GET fewer per miss: \(summary)")

            try await admin.send("SLOWLOG", "RESET")
            for hit in 1...10 {
                let result = try await worker.cache.value(for: "miss-1", compute: upstream.compute("x"))
                #expect(result.source == .freshHit, "hit \(hit)")
                #expect(text(result.value) == "v1")
            }
            let hits = try await sentCommands(admin, generationKey: generationKey)
            #expect(hits["EVALSHA"] == 8, "hits 1–8 asked get_or_lock, which answered the fresh entry: \(hits)")
            #expect(worker.cache.diagnostics.scriptFirstLookups == 19)
            #expect(upstream.count == 20)
            await admin.close()
            await worker.stop()
        }
    }
}
