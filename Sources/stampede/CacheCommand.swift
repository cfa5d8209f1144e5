import ArgumentParser
import Foundation
import Logging
import RedisClient
import StampedeCache

/// `stampede cache get`: one cache lookup from the command line (debugging, scripts, multi-process tests).
struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Look up (or compute) one key through StampedeCache.",
        subcommands: [Get.self]
    )

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Get a key; if this worker must compute it, store --value. Prints the value, its source and age."
        )

        @Option(name: .customLong("redis-url"), help: "Redis URL (default: $REDIS_URL). Required: this command never starts a private server.")
        var redisURL: String?

        @Option(help: "Cache namespace.")
        var namespace: String = "cli"

        @Option(help: "The key.")
        var key: String

        @Option(help: "The value stored if this worker computes the key.")
        var value: String

        @Option(help: "Milliseconds a computed value stays fresh.")
        var freshMs: Int = 60_000

        @Option(help: "Milliseconds a value may be served stale after that.")
        var staleMs: Int = 60_000

        @Option(help: "Milliseconds the computation takes (simulated), to test waiting.")
        var computeMs: Int = 0

        @Option(help: "Reads in a row (the last is printed; with --json all sources are listed).")
        var reads: Int = 1

        @Flag(name: .customLong("near-cache"), help: "Turn on the near-cache (in-process, kept coherent by CLIENT TRACKING).")
        var nearCache = false

        @Flag(help: "Print one JSON object: value, source, age_ms (and sources, with --reads).")
        var json = false

        func validate() throws {
            _ = try NumericInput.integer(freshMs, "--fresh-ms", in: 1...315_360_000_000)
            _ = try NumericInput.integer(staleMs, "--stale-ms", in: 0...315_360_000_000)
            _ = try NumericInput.integer(computeMs, "--compute-ms", in: 0...9_000)
            _ = try NumericInput.integer(reads, "--reads", in: 1...1_000_000)
        }

        func run() async throws {
            guard let url = redisURL ?? ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else {
                throw ValidationError("set --redis-url or REDIS_URL")
            }
            let quiet = Logger(label: "stampede", factory: { _ in SwiftLogNoOpLogHandler() })
            let client = try RedisClient(url: url, logger: quiet)
            let policy = CachePolicy(freshFor: .milliseconds(freshMs), staleFor: .milliseconds(staleMs), computeTimeout: .seconds(10), lockTTL: .seconds(15), ttlJitter: 0)
            let cache = try StampedeCache(redis: client, namespace: namespace, policy: policy, logger: quiet, nearCache: nearCache ? NearCacheConfiguration() : nil)
            let computeDelay = Duration.milliseconds(computeMs)
            let stored = value
            var sources: [String] = []
            var result: CacheResult<String>?
            for _ in 0..<reads {
                let read = try await cache.string(for: key) {
                    if computeDelay > .zero { try await Task.sleep(for: computeDelay) }
                    return stored
                }
                sources.append(read.source.label)
                result = read
            }
            guard let result else { throw ValidationError("no read was made") }
            await cache.close()
            await client.close()
            if json {
                let object: [String: Any] = [
                    "value": result.value, "source": result.source.label, "age_ms": Int(result.age.milliseconds.rounded(.down)), "sources": sources,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(result.value)
                FileHandle.standardError.write(Data("source: \(result.source.label), age: \(result.age)\n".utf8))
            }
        }
    }
}
