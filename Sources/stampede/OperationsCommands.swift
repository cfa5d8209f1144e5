import ArgumentParser
import Foundation
import LLMCache
import Logging
import RedisClient
import StampedeCache

private let quietLogger = Logger(label: "stampede", factory: { _ in SwiftLogNoOpLogHandler() })

/// Opens the Redis the settings name (or a private one) and runs `body`, always cleaning up.
private func withRedis<T>(_ settings: Settings, _ body: (RedisClient) async throws -> T) async throws -> T {
    try await RedisTarget.with(explicitURL: settings.redisURL.value, tcp: false) { url in
        let client = try RedisClient(url: url, clientName: "stampede-cli", logger: quietLogger)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }
}

/// `stampede ask`: one cached completion from a real OpenAI-compatible endpoint.
struct AskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask",
        abstract: "Ask an OpenAI-compatible endpoint one question through the cache; the answer goes to stdout, its cache source and age to stderr."
    )

    @Argument(help: "The prompt.")
    var prompt: String
    @Option(help: "The model. [env: STAMPEDE_MODEL] (default: gpt-4o-mini)")
    var model: String?
    @Option(help: "A system message.")
    var system: String?
    @Option(help: "Sampling temperature (part of the key).")
    var temperature: Double?
    @Flag(name: .customLong("no-cache"), help: "Skip the lookup; ask the upstream and store the answer.")
    var noCache = false
    @Flag(name: .customLong("no-store"), help: "Don't store this answer.")
    var noStore = false
    @Option(help: "Seconds this answer stays fresh (overrides --fresh-for).")
    var ttl: Double?
    @Option(name: .customLong("max-stale"), help: "The most staleness, in seconds, you accept for this answer.")
    var maxStale: Double?
    @Flag(help: "Stream the answer as it arrives.")
    var stream = false
    @OptionGroup var settings: SettingsOptions

    func validate() throws {
        if let temperature { _ = try NumericInput.number(temperature, "--temperature", in: 0...2) }
        if let ttl { _ = try NumericInput.number(ttl, "--ttl", in: 0.001...NumericInput.maximumSeconds) }
        if let maxStale { _ = try NumericInput.number(maxStale, "--max-stale", in: 0...NumericInput.maximumSeconds) }
    }

    func run() async throws {
        let resolved = try Settings.resolve(settings)
        let problems = resolved.problems()
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ")) }
        guard let apiKey = resolved.apiKey.value else { throw UpstreamError.missingAPIKey }
        if resolved.redisURL.value == nil {
            Console.note("(REDIS_URL is not set: using a private redis-server for this one call, so nothing is shared or kept)")
        }
        try await withRedis(resolved) { redis in
            let upstream = OpenAIClient(configuration: OpenAIConfiguration(baseURL: resolved.baseURL.value, apiKey: apiKey), logger: quietLogger)
            let llm = try LLMCache(redis: redis, upstream: upstream, configuration: LLMCacheConfiguration(
                namespace: resolved.namespace.value, policy: resolved.policy,
                keyOptions: RequestKeyOptions(promptVersion: resolved.promptVersion.value)
            ), logger: quietLogger)
            var messages: [ChatMessage] = []
            if let system { messages.append(.system(system)) }
            messages.append(.user(prompt))
            let request = ChatRequest(model: model ?? resolved.model.value, messages: messages, temperature: temperature)
            let options = LLMRequestOptions(noCache: noCache, noStore: noStore, ttl: try ttl.map { try NumericInput.seconds($0, "--ttl", in: 0.001...NumericInput.maximumSeconds) },
                maxStale: try maxStale.map { try NumericInput.seconds($0, "--max-stale") }
            )
            let result: LLMResult
            if stream {
                var final: LLMResult?
                for try await event in llm.stream(request, options: options) {
                    switch event {
                    case .delta(let piece): FileHandle.standardOutput.write(Data(piece.utf8))
                    case .reasoning(let piece): FileHandle.standardError.write(Data(piece.utf8))
                    case .completed(let done): final = done
                    }
                }
                print("")
                guard let final else { throw UpstreamError.streamCutOff(receivedCharacters: 0) }
                result = final
            } else {
                result = try await llm.complete(request, options: options)
                print(result.completion.content)
            }
            var note = "source: \(result.source.label), age: \(result.age)"
            if let reason = result.notCachedBecause { note += ", not cached: \(reason)" }
            if let usage = result.completion.usage { note += ", tokens: \(usage.promptTokens)+\(usage.completionTokens)" }
            Console.note(note)
            await llm.close()
        }
    }
}

/// `stampede stats`: fleet-wide accounting and the namespace's Redis memory.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show the fleet-wide accounting of a namespace (requests, hits, upstream calls, tokens and money saved) and the Redis memory its entries use."
    )

    @Flag(help: "Print one JSON object.")
    var json = false
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        let resolved = try Settings.resolve(settings)
        let namespace = try KeySpaceCheck.namespace(resolved.namespace.value)
        try await withRedis(resolved) { redis in
            let accounting = try await LLMCache.fleetAccounting(redis: redis, namespaces: [namespace])
            for field in accounting.invalidFields {
                Console.note("warning: ignoring an accounting field that holds no usable counter: \(field)")
            }
            // Entry keys all start with "stampede:{<namespace>:".
            var keys = 0
            var bytes: Int64 = 0
            try await redis.scanKeys(matching: "stampede:{\(namespace):*") { batch in
                keys += batch.count
                let usage = try await redis.send(pipeline: batch.map { RedisCommand("MEMORY", "USAGE", RedisArgument($0), "SAMPLES", "0") })
                bytes += usage.compactMap(\.int).reduce(0, +)
                return keys < 1_000_000
            }
            let total = accounting.total
            if json {
                let object: [String: Any] = [
                    "namespace": namespace, "redis_keys": keys, "redis_bytes": bytes,
                    "requests": total.requests, "fresh_hits": total.freshHits, "stale_hits": total.staleHits,
                    "received_from_other_workers": total.receivedFromOtherWorkers, "upstream_calls": total.upstreamCalls,
                    "failures": total.failures, "tokens_saved": total.tokensServedFromCache,
                    "money_saved_usd": total.moneySaved, "hit_rate": total.hitRate,
                    "semantic_hits": total.semanticHits, "semantic_waits": total.semanticWaits, "semantic_near_misses": total.semanticNearMisses,
                    "semantic_guard_rejections": total.semanticGuardRejections, "semantic_skipped": total.semanticSkipped,
                    "embeddings_computed": total.embeddingsComputed, "embedding_cost_usd": total.embeddingCost,
                    "semantic_tokens_saved": total.semanticTokensSaved, "semantic_money_saved_usd": total.semanticMoneySaved,
                ]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
                return
            }
            print("namespace \(namespace): \(keys) Redis keys, \(bytes) bytes")
            print("model".padding(toLength: 28, withPad: " ", startingAt: 0) + "requests   hits  upstream  failures  tokens saved   money saved")
            for (key, counters) in accounting.entries.sorted(by: { $0.key < $1.key }) {
                let hits = counters.freshHits + counters.staleHits + counters.receivedFromOtherWorkers
                print(key.model.padding(toLength: 28, withPad: " ", startingAt: 0)
                      + "\(counters.requests)".leftPadded(8) + "\(hits)".leftPadded(7) + "\(counters.upstreamCalls)".leftPadded(10)
                      + "\(counters.failures)".leftPadded(10) + "\(counters.tokensServedFromCache)".leftPadded(14)
                      + ("$" + formatted(counters.moneySaved, 4)).leftPadded(14))
            }
            if accounting.entries.isEmpty { print("(no accounting yet: workers flush it about once a second)") }
            if total.semanticHits + total.semanticNearMisses + total.semanticSkipped + total.embeddingsComputed > 0 {
                print("semantic: \(total.semanticHits) hits (\(total.semanticWaits) by waiting for a similar computation), \(total.semanticNearMisses) near misses, "
                      + "\(total.semanticGuardRejections) guard rejections, \(total.semanticSkipped) skipped; \(total.embeddingsComputed) texts embedded "
                      + "($\(formatted(total.embeddingCost, 4))); saved \(total.semanticTokensSaved) tokens, $\(formatted(total.semanticMoneySaved, 4))")
            }
        }
    }
}

/// `stampede invalidate`: retire answers fleet-wide.
struct InvalidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidate",
        abstract: "Retire cached answers: a whole namespace (O(1), by bumping its generation), one key, or every entry with a tag."
    )

    @Option(help: "Delete this one cache key (as LLMCache builds it: <model>:<prompt-version>:<hash>).")
    var key: String?
    @Option(help: "Delete every entry committed with this tag.")
    var tag: String?
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        let resolved = try Settings.resolve(settings)
        guard resolved.redisURL.value != nil else {
            throw ValidationError("set REDIS_URL (or --redis-url): invalidating a private, empty redis-server would do nothing")
        }
        guard key == nil || tag == nil else { throw ValidationError("give --key or --tag, not both (or neither, to retire the whole namespace)") }
        try await withRedis(resolved) { redis in
            let cache = try StampedeCache(redis: redis, namespace: resolved.namespace.value, policy: resolved.policy, logger: quietLogger)
            if let key {
                let deleted = try await cache.invalidate(key: key)
                print(deleted ? "deleted \(key) in \(resolved.namespace.value)" : "no entry \(key) in \(resolved.namespace.value) (nothing to delete)")
                // Its semantic documents too, so no paraphrase is answered from the old answer.
                let generation = await cache.generationForKeys()
                let documents = try await LLMCache.removeSemanticDocuments(redis: redis, namespace: resolved.namespace.value, generation: generation, cacheKey: key)
                if documents > 0 { print("deleted its semantic document(s): \(documents)") }
            } else if let tag {
                print("deleted \(try await cache.invalidate(tag: tag)) entries tagged \(tag) in \(resolved.namespace.value)")
            } else {
                print("namespace \(resolved.namespace.value) is now at generation \(try await cache.invalidateAll()); older entries are no longer served and expire by their TTL")
            }
            await cache.close()
        }
    }
}

/// `stampede config check`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect configuration.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resolve every setting (flag > environment > config file > default), show where each came from, and explain any problem. Exits non-zero on problems."
        )

        @Flag(help: "Also connect to Redis, run PING, and try every command the cache needs (EVALSHA, SPUBLISH, SSUBSCRIBE, ...) as this user.")
        var ping = false
        @OptionGroup var settings: SettingsOptions

        func run() async throws {
            let resolved = try Settings.resolve(settings)
            for (name, value, source) in resolved.rows {
                print(name.padding(toLength: 17, withPad: " ", startingAt: 0) + value.padding(toLength: 46, withPad: " ", startingAt: 0) + " (\(source))")
            }
            var problems = resolved.problems()
            if resolved.apiKey.value == nil { print("note: no API key; `stampede ask` needs OPENAI_API_KEY (the demo does not)") }
            if ping, problems.isEmpty, let url = resolved.redisURL.value {
                do {
                    let client = try RedisClient(url: url, logger: quietLogger)
                    do {
                        _ = try await client.ping()
                        print("redis: PING ok")
                        let server = try await client.serverInfo()
                        print("redis: server \(server.product) \(server.version), mode \(server.mode)")
                        if let tls = client.configuration.tls {
                            print("redis: TLS on, certificate verification \(tls.verification)\(tls.certificateFile == nil ? "" : ", client certificate (mutual TLS)")")
                        } else {
                            print("redis: TLS off (plaintext)")
                        }
                        switch client.configuration.deployment {
                        case .sentinel(let sentinels, let masterName, _):
                            print("redis: through Sentinel (\(sentinels.count) sentinels), primary '\(masterName)' at \(try await client.primaries().map(\.description).joined())")
                        case .automatic, .cluster:
                            if try await client.isCluster() {
                                let primaries = try await client.primaries()
                                print("redis: Redis Cluster, \(primaries.count) primaries (\(primaries.map(\.description).joined(separator: ", "))); commands are routed by hash slot")
                            }
                        }
                        if server.mode == "cluster" {
                            print("redis: vector search (semantic caching) not used: open-source Redis Cluster searches one shard only; exact caching works")
                        } else {
                            print("redis: vector search (semantic caching) \(server.vectorSearch ? "available" : "not available: semantic caching needs Redis 8, Redis Stack or RediSearch")")
                        }
                        let missing = try await StampedeCache.missingPermissions(redis: client, namespace: resolved.namespace.value)
                        for permission in missing { problems.append("redis permission: \(permission)") }
                        if missing.isEmpty { print("redis: every command the cache needs is allowed for this user") }
                    } catch {
                        problems.append("redis_url: \(error)")
                    }
                    await client.close()
                } catch {
                    problems.append("redis_url: \(error)")
                }
            }
            guard problems.isEmpty else {
                for problem in problems { print("problem: \(problem)") }
                throw ExitCode.failure
            }
            print("ok: the settings are valid")
        }
    }
}
