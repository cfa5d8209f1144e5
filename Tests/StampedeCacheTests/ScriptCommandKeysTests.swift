import NIOCore
import RedisClient
@testable import StampedeCache
import Testing

@Suite("The cache's typed script commands")
struct ScriptCommandKeysTests {
    /// Redis Cluster's rule: the hash tag is what lies between the first `{` and the first `}` after
    /// it, when that is not empty; otherwise the whole key.
    private func hashTag(_ key: String) -> Substring {
        guard let open = key.firstIndex(of: "{"),
              let close = key[key.index(after: open)...].firstIndex(of: "}"),
              close > key.index(after: open) else { return Substring(key) }
        return key[key.index(after: open)..<close]
    }

    private func keys(of command: some RedisScriptCommand) -> [String] {
        command.keys.map { argument in
            var one = RedisCommand("X")
            one.append(argument)
            return String(decoding: one.arguments[0], as: UTF8.self)
        }
    }

    @Test("every command's keys share one hash tag, so a cluster can run it on one node", arguments: ["plain", "with {braces} and }", "{", "}{"])
    func keysShareOneHashTag(userKey: String) throws {
        let entry = EntryKeys(id: "ns:7:\(userKey)")
        let policy = CachePolicy()
        let value = ByteBuffer(string: "v")
        let all: [(String, [String])] = [
            ("get_or_lock", keys(of: GetOrLock(entry, policy: policy))),
            ("commit", keys(of: Commit(entry, token: 1, value: value, policy: policy, freshFor: .seconds(1), computeTime: .zero, channel: "c"))),
            ("release", keys(of: Release(entry, token: 1, channel: "c", failure: nil))),
            ("handoff", keys(of: HandOff(entry, token: 1, value: value, reason: "r", lifetime: .seconds(1), channel: "c"))),
            ("hot_touch", keys(of: HotTouch(entry, hits: 1, policy: policy))),
            ("invalidate_key", keys(of: InvalidateKey(entry, channel: "c"))),
        ]
        for (name, keys) in all {
            #expect(!keys.isEmpty, "\(name) carries no keys")
            #expect(Set(keys.map(hashTag)).count == 1, "\(name): keys \(keys) are in more than one hash slot")
            #expect(keys.first == entry.value, "\(name): KEYS[1] must be the value key")
        }
        #expect(all.map(\.1.count) == [3, 3, 2, 3, 3, 2])
    }

    @Test("the six commands run the six embedded scripts, each under its own SHA-1")
    func commandsNameTheirScripts() {
        let shas = [GetOrLock.script, Commit.script, Release.script, HandOff.script, HotTouch.script, InvalidateKey.script].map(\.sha1)
        #expect(Set(shas).count == 6)
        #expect(Set(shas) == Set(CacheScripts.all.map(\.sha1)))
    }

    @Test("a failure reason is cut to 500 characters before it is sent")
    func releaseCutsLongReasons() {
        let release = Release(EntryKeys(id: "ns:1:k"), token: 9, channel: "c", failure: String(repeating: "x", count: 2_000))
        var probe = RedisCommand("X")
        probe.append(release.arguments[3])
        #expect(probe.arguments[0].count == 500)
    }
}
