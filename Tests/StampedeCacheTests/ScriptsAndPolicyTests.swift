import Foundation
import NIOCore
import RedisClient
@testable import StampedeCache
import Testing

@Suite("embedded scripts and policy validation")
struct ScriptsAndPolicyTests {
    static let luaDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "LuaScripts")

    @Test("every LuaScripts/*.lua script is embedded byte for byte after prelude.lua, its helpers live only in the prelude, and nothing else is embedded")
    func embeddedScriptsEqualFiles() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.luaDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "lua" }
        #expect(files.count == 8)  // 6 cache scripts, semantic_register (LLMCache), prelude
        let prelude = try String(contentsOf: Self.luaDirectory.appending(path: "prelude.lua"), encoding: .utf8)
        let scripts = files.filter { $0.lastPathComponent != "prelude.lua" }
        #expect(Set(scripts.map { $0.deletingPathExtension().lastPathComponent }) == Set(EmbeddedLuaScripts.sources.keys))
        for file in scripts {
            let onDisk = try String(contentsOf: file, encoding: .utf8)
            #expect(EmbeddedLuaScripts.sources[file.deletingPathExtension().lastPathComponent] == prelude + onDisk, "\(file.lastPathComponent)")
            for helper in ["bad", "shown", "int_arg", "num_arg", "fmtint"] {
                #expect(!onDisk.contains("local function \(helper)("), "\(file.lastPathComponent) defines \(helper) again; it lives in prelude.lua")
            }
        }
        #expect(CacheScripts.all.map(\.name).sorted() == ["commit", "get_or_lock", "handoff", "hot_touch", "invalidate_key", "release"])
    }

    @Test("the default policy is valid")
    func defaultPolicyIsValid() throws {
        try CachePolicy().validate()
    }

    @Test("invalid settings are rejected naming the setting to change", arguments: [
        (CachePolicy(computeTimeout: .seconds(60), lockTTL: .seconds(60)), "lockTTL", "raise lockTTL to 66.0 seconds"),
        (CachePolicy(computeTimeout: .seconds(5), lockTTL: .seconds(5.5)), "lockTTL", "at least 1.0 seconds"),
        (CachePolicy(freshFor: .zero), "freshFor", "positive"),
        (CachePolicy(staleFor: .seconds(-1)), "staleFor", "zero or positive"),
        (CachePolicy(computeTimeout: .seconds(-1)), "computeTimeout", "positive"),
        (CachePolicy(hot: .init(threshold: 0)), "hot.threshold", "at least 1"),
        (CachePolicy(hot: .init(window: .zero)), "hot.window", "positive"),
        (CachePolicy(ttlJitter: 0.6), "ttlJitter", "[0, 0.5]"),
        (CachePolicy(ttlJitter: -0.1), "ttlJitter", "[0, 0.5]"),
        (CachePolicy(earlyRefreshBeta: -1), "earlyRefreshBeta", ">= 0"),
        (CachePolicy(maxValueBytes: 0), "maxValueBytes", "between"),
        (CachePolicy(freshFor: .seconds(400 * 365 * 86_400)), "freshFor", "unit mistake"),
        (CachePolicy(redisUnavailable: .failOpen(maxConcurrentComputations: 0)), "redisUnavailable", ">= 1"),
    ])
    func rejectsInvalidPolicies(policy: CachePolicy, setting: String, hint: String) {
        #expect(throws: CacheConfigurationError.self) { try policy.validate() }
        do {
            try policy.validate()
        } catch {
            #expect(error.setting == setting)
            #expect(error.problem.contains(hint), "\(error.problem)")
        }
    }

    @Test("namespaces are checked and keys are escaped so they cannot break the hash tag or notices")
    func keySpace() throws {
        #expect(throws: CacheConfigurationError.self) { try KeySpace(namespace: "has space") }
        #expect(throws: CacheConfigurationError.self) { try KeySpace(namespace: "") }
        let space = try KeySpace(namespace: "llm")
        let entry = try space.entry("a{b}|c%", generation: 7)
        #expect(entry.id == "llm:7:a%7Bb%7D%7Cc%25")
        #expect(entry.value == "stampede:{llm:7:a%7Bb%7D%7Cc%25}:v")
        #expect(entry.lock == "stampede:{llm:7:a%7Bb%7D%7Cc%25}:l")
        #expect(throws: CacheError.self) { try space.entry("", generation: 0) }
        #expect(throws: CacheError.self) { try space.entry(String(repeating: "k", count: 1025), generation: 0) }
    }

    @Test("entry headers parse exactly (sc2: fresh-until, servable-until, created, compute ms, fence), and anything else is rejected")
    func entryHeaders() {
        let stored = StoredEntry(blob: .init(string: "sc2 1700000000123 1700000060123 1699999999000 42 7\nhello\r\n\u{0}"), now: 5)
        #expect(stored?.freshUntil == 1_700_000_000_123)
        #expect(stored?.staleUntil == 1_700_000_060_123)
        #expect(stored?.createdAt == 1_699_999_999_000)
        #expect(stored?.computeMillis == 42)
        #expect(stored?.fence == 7)
        #expect(stored.map { String(buffer: $0.value) } == "hello\r\n\u{0}")
        #expect(StoredEntry(blob: .init(string: "sc2 2 3 1 3 4\n"), now: 0)?.value.readableBytes == 0)
        let bad = [
            "", "sc2", "sc2 1 2 3 4\nx", "sc2 1 2 3 4 5 6\nx", "sc1 1 2 3 4\nx", "sc2 2 3 1 3 4", "sc2 2 3  1 3 4\nx",
            "sc2 -2 3 1 3 4\nx", "sc2 12345678901234567 2 1 3 4\nx", "sc2 9007199254740992 9007199254740992 1 3 4\nx", "plain text",
            // ct <= fu <= su, su - ct within ~10 years, fence below 10^15 - 1:
            "sc2 5 4 1 0 1\nx", "sc2 1 2 3 0 1\nx", "sc2 9999999999999 9999999999999 1700000000000 0 1\nx",
            "sc2 2 3 1 0 999999999999999\nx",
        ]
        for blob in bad {
            #expect(StoredEntry(blob: .init(string: blob), now: 0) == nil, "\(blob)")
        }
        #expect(StoredEntry(blob: .init(string: "sc2 2 3 1 0 999999999999998\nx"), now: 0)?.fence == 999_999_999_999_998)
    }

    @Test("notices parse, and a failure message may itself contain '|'")
    func noticeParsing() {
        #expect(Notice.parse(.init(string: "done|llm:0:k|12"))! == ("llm:0:k", .done(token: 12)))
        #expect(Notice.parse(.init(string: "fail|llm:0:k|3|boom|x"))! == ("llm:0:k", .failed(token: 3, message: "boom|x", retryable: true)))
        #expect(Notice.parse(.init(string: "fatal|llm:0:k|3|400 bad"))! == ("llm:0:k", .failed(token: 3, message: "400 bad", retryable: false)))
        #expect(Notice.parse(.init(string: "deliver|llm:0:k|4|truncated|x"))! == ("llm:0:k", .delivered(token: 4, reason: "truncated|x")))
        #expect(Notice.parse(.init(string: "deliver|llm:0:k|4")) == nil)
        #expect(Notice.parse(.init(string: "inval|llm:0:k"))! == ("llm:0:k", .invalidated))
        #expect(Notice.parse(.init(string: "gen|5"))! == ("", .generation(5)))
        #expect(Notice.parse(.init(string: "done|x|notanumber")) == nil)
        #expect(Notice.parse(.init(string: "garbage")) == nil)
    }
}

@Suite("notice hub")
struct NoticeHubTests {
    @Test("a follower ignores done/fail notices of computations older than the one it waits for, even when delivered late")
    func ignoresOlderComputations() async throws {
        let client = try RedisClient(url: "redis://127.0.0.1:1")  // never used: notices are delivered directly
        let hub = NoticeHub(client: client, logger: .init(label: "t"))
        let since = ContinuousClock.now
        hub.deliver(entry: "e", notice: .done(token: 3))  // the previous commit's notice, arriving late
        #expect(await hub.wait(for: "e", on: "c", since: since, minimumToken: 4, timeout: .milliseconds(50)) == .timedOut)
        #expect(await hub.wait(for: "e", on: "c", since: since, minimumToken: 3, timeout: .milliseconds(50)) == .notice(.done(token: 3)))
        let since2 = ContinuousClock.now
        let waiting = Task { await hub.wait(for: "e", on: "c", since: since2, minimumToken: 4, timeout: .seconds(3600)) }
        try await eventually("the follower is registered") { hub.waiterCount == 1 }
        hub.deliver(entry: "e", notice: .failed(token: 2, message: "old", retryable: true))
        hub.deliver(entry: "e", notice: .done(token: 5))
        #expect(await waiting.value == .notice(.done(token: 5)))
        await client.close()
    }
}
