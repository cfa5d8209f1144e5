import ArgumentParser
import Foundation
import LLMCache
import Logging
import RedisClient

/// `stampede semantic index info|drop`: the semantic indexes on a Redis with vector search.
struct SemanticCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "semantic",
        abstract: "Inspect or drop the semantic (vector) indexes StampedeCache created on a Redis with vector search.",
        subcommands: [IndexCommand.self]
    )

    struct IndexCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "index",
            abstract: "The semantic indexes: info, drop.",
            subcommands: [Info.self, Drop.self]
        )
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the semantic indexes with their documents, dimension and metric.")
        @Option(name: .customLong("redis-url"), help: "The Redis (default: REDIS_URL). It needs vector search: Redis 8, Redis Stack or RediSearch.")
        var redisURL: String?
        @Option(help: "The index name prefix (SemanticConfiguration.indexName).")
        var prefix: String = "stampede-semantic"
        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            try await SemanticCommand.withRedis(redisURL) { redis in
                let indexes = try await LLMCache.semanticIndexes(redis: redis, prefix: prefix)
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    print(String(decoding: try encoder.encode(indexes), as: UTF8.self))
                } else if indexes.isEmpty {
                    print("no semantic index with the prefix '\(prefix)' (one is created by the first semantic request)")
                } else {
                    print("name                              documents  dimensions  metric  algorithm  indexed")
                    for index in indexes {
                        print(
                            index.name.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: "%9d %11d  ", index.documents, index.dimensions)
                            + index.metric.padding(toLength: 8, withPad: " ", startingAt: 0) + index.algorithm.padding(toLength: 10, withPad: " ", startingAt: 0)
                            + String(format: "%6.0f%%", index.percentIndexed)
                        )
                    }
                }
            }
        }
    }

    struct Drop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drop a semantic index and its documents (exact entries stay; the next semantic request creates the index again).")
        @Argument(help: "The index name, as `stampede semantic index info` lists it.")
        var name: String
        @Option(name: .customLong("redis-url"), help: "The Redis (default: REDIS_URL).")
        var redisURL: String?

        func run() async throws {
            try await SemanticCommand.withRedis(redisURL) { redis in
                try await LLMCache.dropSemanticIndex(redis: redis, name: name)
                print("dropped \(name) and its documents")
            }
        }
    }

    static func withRedis(_ explicitURL: String?, _ body: (RedisClient) async throws -> Void) async throws {
        guard let url = explicitURL ?? ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else {
            throw ValidationError("set REDIS_URL (or --redis-url) to the Redis holding the semantic index")
        }
        let client = try RedisClient(url: url, clientName: "stampede-cli", logger: Logger(label: "stampede", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            try await body(client)
            await client.close()
        } catch {
            await client.close()
            throw error
        }
    }
}
