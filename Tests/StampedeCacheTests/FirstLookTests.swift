import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Testing

/// A fresh hit is answered by the first look (the names of a recent key remembered, its `GET`
/// encoded once), before any closure or flight exists; anything else goes on to the flight with
/// what the look read.
@Suite("StampedeCache: the first look and the names of recent keys")
struct FirstLookTests {
    private static let awkwardKeys = ["plain", "a{b}c", "100%", "x|y", "caf\u{E9}", "emoji-\u{1F600}", String(repeating: "k", count: 1024)]

    @Test("the remembered names are the key space's names, and the encoded GET is byte for byte RESPEncoder's, for 1,000 keys (4 per slot) in two generations, asked twice each")
    func rememberedNamesAreTheKeySpaces() throws {
        let keySpace = try KeySpace(namespace: "ns")
        let recent = RecentEntryKeys(keySpace: keySpace)
        let keys = Self.awkwardKeys + (0..<(1_000 - Self.awkwardKeys.count)).map { "key-\($0)" }
        for generation: Int64 in [0, 7] {
            for _ in 0..<2 {
                for key in keys {
                    let (entry, get) = try recent.names(for: key, generation: generation)
                    let expected = try keySpace.entry(key, generation: generation)
                    #expect(Array(entry.value.utf8) == Array(expected.value.utf8), "\(key) in generation \(generation)")
                    #expect(Array(entry.id.utf8) == Array(expected.id.utf8), "\(key) in generation \(generation)")
                    #expect(get == RESPEncoder.encode(RedisCommand("GET", RedisArgument(expected.value))), "\(key)")
                }
            }
        }
        #expect(throws: CacheError.self) { try recent.names(for: "", generation: 0) }
        #expect(throws: CacheError.self) { try recent.names(for: String(repeating: "k", count: 1025), generation: 0) }
    }

    @Test("two keys Swift calls equal but whose bytes differ (é precomposed and decomposed) keep their own Redis keys, whichever is asked first and however often")
    func canonicallyEqualKeysKeepTheirBytes() throws {
        let keySpace = try KeySpace(namespace: "ns")
        let recent = RecentEntryKeys(keySpace: keySpace)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        // Compared as bytes: `EntryKeys`' own `==` compares Strings, which calls them equal too.
        for key in [composed, decomposed, decomposed, composed, composed, decomposed] {
            let (entry, get) = try recent.names(for: key, generation: 3)
            let expected = try keySpace.entry(key, generation: 3)
            #expect(Array(entry.value.utf8) == Array(expected.value.utf8), "\(Array(key.utf8))")
            #expect(get == RESPEncoder.encode(RedisCommand("GET", RedisArgument(expected.value))))
        }
        let composedValue = Array(try recent.names(for: composed, generation: 3).0.value.utf8)
        let decomposedValue = Array(try recent.names(for: decomposed, generation: 3).0.value.utf8)
        #expect(composedValue != decomposedValue)
    }

    @Test("one miss then 5 hits from one caller: 6 hits counted for hot-key promotion (the miss's first look is not counted again by its flight), one GET per lookup, the upstream called once")
    func aLookupIsCountedAndReadOnce() async throws {
        try await withPrivateRedis { server in
            let worker = try await Worker.start(server.url, namespace: uniqueNamespace(), policy: testPolicy(), backgroundLoop: false)
            let admin = try makeClient(server.url)
            let cache = worker.cache
            let entry = try await cache.entryKeys(for: "k")
            try await admin.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
            try await admin.send("CONFIG", "SET", "slowlog-max-len", "100000")
            try await admin.send("SLOWLOG", "RESET")
            let upstream = Upstream()
            let miss = try await cache.value(for: "k", compute: upstream.compute("v"))
            #expect(miss.source == .computed)
            for hit in 1...5 {
                let result = try await cache.value(for: "k", compute: upstream.compute("other"))
                #expect(result.source == .freshHit, "hit \(hit)")
                #expect(text(result.value) == "v")
            }
            var valueReads = 0
            for logged in try await admin.send("SLOWLOG", "GET", "100000").array ?? [] {
                guard let arguments = logged.array?[3].array?.compactMap(\.string) else { continue }
                if arguments.first?.uppercased() == "GET", arguments.dropFirst().first == entry.value { valueReads += 1 }
            }
            // The miss: its first look's GET (get_or_lock reads the entry with GET too, inside the
            // script) — so 2 — and one GET per hit.
            #expect(valueReads == 2 + 5, "GETs of the entry")
            let counted = cache.hits.drain().filter { $0.0 == entry }.map(\.1)
            #expect(counted == [6])
            #expect(upstream.count == 1)
            await admin.close()
            await worker.stop()
        }
    }
}
