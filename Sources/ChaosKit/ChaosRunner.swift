import AsyncHTTPClient
import Foundation
import LLMCache
import LocalServices
package import Logging
import NIOCore
import RedisClient
import RedisServerProcess
import SimulatedLLM
import StampedeCache
import Synchronization

/// Runs chaos scenarios: a fleet of LLMCache workers under load against a simulated upstream,
/// a fault injected against Redis (or the upstream), and invariants checked from the upstream's
/// own record of every call — never from the cache's own metrics alone.
package enum ChaosRunner {
    /// Freshness in the scenarios: short, so answers expire and are refreshed during a run, and
    /// fresh + stale (2 s) shorter than a smoke run (3 s), so "no answer older than fresh + stale"
    /// is exercised: an answer past it would be served in the run if the cache allowed it.
    static let freshFor: Duration = .seconds(1)
    static let staleFor: Duration = .seconds(1)
    static let computeTimeout: Duration = .seconds(1)
    static let lockTTL: Duration = .seconds(2)
    static let commandTimeout: Duration = .milliseconds(500)

    static var policy: CachePolicy {
        CachePolicy(
            freshFor: freshFor, staleFor: staleFor, computeTimeout: computeTimeout, lockTTL: lockTTL,
            hot: .init(threshold: 1_000_000, window: .seconds(60), ttl: .zero), ttlJitter: 0,
            failSafeThrottle: .milliseconds(200), followerRecheckInterval: .milliseconds(250),
            fenceRetention: .seconds(600), redisUnavailable: .failOpen(maxConcurrentComputations: 64)
        )
    }

    /// Every request must end (value or typed error) within this; a request still running is a hang.
    static var requestDeadline: Duration { policy.effectiveMaxWait + computeTimeout + .seconds(2) }

    /// The scenarios `options` allow, in order, with why the others are left out.
    package static func plan(_ scenarios: [ChaosScenario], options: ChaosOptions) -> (run: [ChaosScenario], skipped: [(ChaosScenario, String)]) {
        var run: [ChaosScenario] = []
        var skipped: [(ChaosScenario, String)] = []
        for scenario in scenarios {
            if scenario.isDestructive && !options.allowDestructive {
                skipped.append((scenario, "is destructive: pass --allow-destructive (it flushes, kills, pauses or restarts Redis)"))
            } else if (scenario.isMultiProcess || options.processes) && options.workerExecutable == nil {
                skipped.append((scenario, "needs the stampede executable to start worker processes"))
            } else if scenario.needsOwnServer && options.redisURL != nil {
                skipped.append((scenario, scenario.needsOwnCluster || scenario == .sentinelFailover
                    ? "needs a Redis Cluster or Sentinel deployment the suite starts itself (it fails over or reshards it); run without REDIS_URL"
                    : "needs a redis-server the suite starts itself (it restarts it or sets its memory); run without REDIS_URL"))
            } else {
                run.append(scenario)
            }
        }
        return (run, skipped)
    }

    /// Runs one scenario and judges it.
    package static func run(_ scenario: ChaosScenario, options: ChaosOptions, logger: Logger = Logger(label: "chaos", factory: { _ in SwiftLogNoOpLogHandler() })) async throws -> ScenarioReport {
        try await run([scenario], options: options, logger: logger)
    }

    /// Runs several faults at once (for example `client-kill` with `upstream-errors`) and judges the
    /// result against the sum of what each fault can justify. Multi-process scenarios run alone.
    package static func run(_ scenarios: [ChaosScenario], options: ChaosOptions, logger: Logger = Logger(label: "chaos", factory: { _ in SwiftLogNoOpLogHandler() })) async throws -> ScenarioReport {
        guard let first = scenarios.first else { throw ChaosError("no scenario given") }
        if scenarios.contains(where: \.isMultiProcess), scenarios.count > 1 {
            throw ChaosError("worker-killed and leader-frozen run alone (their workers are separate processes)")
        }
        var serverOptions = RedisServerOptions()
        if scenarios.contains(.memoryPressure) {
            serverOptions.maxmemory = "2mb"
            serverOptions.maxmemoryPolicy = "allkeys-lru"
        }
        let wantsCluster = scenarios.contains(where: \.needsOwnCluster)
        let wantsSentinel = scenarios.contains(.sentinelFailover)
        if (wantsCluster || wantsSentinel), scenarios.filter(\.needsOwnServer).count > 1 {
            throw ChaosError("the cluster and sentinel scenarios cannot be combined with each other, redis-restart or memory-pressure (each needs its own servers)")
        }
        var cluster: LocalCluster?
        var sentinel: LocalSentinel?
        var server: RedisServerProcess?
        let url: String
        if let given = options.redisURL {
            url = given
        } else if wantsSentinel {
            let started = try await LocalSentinel.start()
            sentinel = started
            url = started.url
        } else if wantsCluster {
            // Failover needs a replica per primary; resharding needs only the primaries.
            let started = try await LocalCluster.start(primaries: 3, replicasPerPrimary: scenarios.contains(.clusterFailover) ? 1 : 0)
            cluster = started
            url = started.url
        } else {
            let started = try await RedisServerProcess.start(serverOptions, logger: logger)
            server = started
            url = started.url
        }
        do {
            let report = first.isMultiProcess
                ? try await runMultiProcess(first, url: url, options: options, logger: logger)
                : try await runScenario(scenarios, url: url, server: server, cluster: cluster, sentinel: sentinel, options: options, logger: logger)
            await server?.stop()
            await cluster?.stop()
            await sentinel?.stop()
            return report
        } catch {
            await server?.stop()
            await cluster?.stop()
            await sentinel?.stop()
            throw error
        }
    }

    typealias Record = RecordView

    struct RecordView: Sendable {
        var key: Int
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        var source: String?
        var error: String?
        var ageMs: Double
        var calledUpstream: Bool
        var hung: Bool
    }

    static func prompt(_ key: Int, seed: UInt64) -> ChatRequest {
        ChatRequest(model: "chaos-model", messages: [.user("chaos question \(key) of run \(seed)")])
    }

    private static func runScenario(_ scenarios: [ChaosScenario], url: String, server: RedisServerProcess?, cluster: LocalCluster?, sentinel: LocalSentinel?, options: ChaosOptions, logger: Logger) async throws -> ScenarioReport {
        let keys = scenarios.contains(.memoryPressure) ? max(options.keys, 1_500) : options.keys
        let upstream = try await SimulatedLLMServer.start(baseBehaviour(options.seed))
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(64, options.workers * options.callers * 2))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        let namespace = "chaos\(UInt32.random(in: 0..<UInt32.max))"
        var runs: [BackgroundRun] = []
        let near = nearCache(scenarios, options: options)
        func makeWorker(_ name: String) throws -> (RedisClient, LLMCache) {
            let worker = try ChaosRunner.makeWorker(
                name, url: url, upstreamURL: upstream.baseURL, namespace: namespace, http: http, nearCache: near,
                commitInBackground: options.commitInBackground, logger: logger
            )
            runs.append(BackgroundRun(worker.1.run))
            return worker
        }
        // In-process workers run now; worker processes are started below and their records read back.
        var fleet: [(RedisClient, LLMCache)] = []
        if !options.processes {
            for index in 0..<options.workers { fleet.append(try makeWorker("worker-\(index)")) }
        }
        let admin = try RedisClient(url: url, clientName: "chaos-admin", logger: logger)
        let evictedBefore = try await evictedKeys(admin)

        let records = RecordLog()
        let zipf = Zipf(count: keys, exponent: options.zipf)
        let faultWindow = FaultWindow()
        var processes: WorkerFleet?
        if options.processes {
            guard let executable = options.workerExecutable else { throw ChaosError("--processes needs the stampede executable") }
            processes = try await WorkerFleet.start(
                executable: executable, count: options.workers, redisURL: url, upstreamURL: upstream.baseURL, namespace: namespace,
                callers: options.callers, keys: keys, zipf: options.zipf, seed: options.seed, duration: options.duration,
                nearCache: near != nil, commitInBackground: options.commitInBackground, mutation: options.mutation
            )
        }
        // The invalidations the `lost-invalidations` scenario makes go through a cache of its own.
        let invalidator = scenarios.contains(.lostInvalidations) ? try makeWorker("invalidator") : nil
        let started = ContinuousClock.now
        let end = started + options.duration

        let injector = Task {
            await withTaskGroup(of: Void.self) { group in
                for scenario in scenarios {
                    group.addTask {
                        await inject(
                            scenario, admin: admin, server: server, cluster: cluster, sentinel: sentinel, upstream: upstream, started: started,
                            duration: options.duration, window: faultWindow, logger: logger,
                            invalidate: { key in
                                guard let invalidator else { return false }
                                return (try? await invalidator.1.invalidate(prompt(key, seed: options.seed))) ?? false
                            }
                        )
                    }
                }
            }
        }
        let mutator = options.mutation.map { mutation in
            Task { await mutate(mutation, admin: admin, namespace: namespace, until: end, logger: logger) }
        }
        var missingWorkers: [String] = []
        var rejectedCommits = 0
        if let processes {
            let collected = await processes.collect()
            records.append(contentsOf: collected.records)
            missingWorkers = collected.missing
            rejectedCommits = collected.summaries.map(\.rejectedCommits).reduce(0, +)
        } else {
            await runCallers(fleet.enumerated().map { ($0.offset, $0.element.1) }, callers: options.callers, zipf: zipf, seed: options.seed, until: end, into: records)
        }
        await injector.value
        await mutator?.value

        // The fault ends (memory pressure is lifted), then the fleet (or, with worker processes, as
        // many fresh in-process workers) must be back to >= 99% hits within a bounded number of rounds.
        if scenarios.contains(.memoryPressure) {
            do { _ = try await admin.sendToEveryPrimary(RedisCommand("CONFIG", "SET", "maxmemory", "0")) } catch { logger.warning("could not lift maxmemory", metadata: ["error": "\(error)"]) }
        }
        if fleet.isEmpty {
            for index in 0..<options.workers { fleet.append(try makeWorker("probe-\(index)")) }
        }
        try? await Task.sleep(for: .milliseconds(300))
        let recovery = await recoveryProbe(fleet.map(\.1), keys: keys, seed: options.seed)

        let all = records.all
        let calls = upstream.calls
        let evictedAfter = (try? await evictedKeys(admin)) ?? evictedBefore
        let window: (start: ContinuousClock.Instant, end: ContinuousClock.Instant) = faultWindow.current ?? (started, started)

        // Committed values must be readable afterwards (unless evicted): every key answered by a
        // computation after the fault ended has an entry in Redis now.
        var unreadable: [Int] = []
        if !scenarios.contains(.memoryPressure) {
            let computedAfterFault = Set(all.filter { $0.calledUpstream && $0.source == "computed" && $0.start > window.end }.map(\.key))
                .intersection(keysStillRetained(all))
            unreadable = try await unreadableKeys(computedAfterFault, cache: try fleet[0].1.cache(for: namespace), admin: admin, seed: options.seed)
        }

        let everyWorker = fleet + (invalidator.map { [$0] } ?? [])
        for (_, llm) in everyWorker { await llm.close() }
        for run in runs { await run.finished() }
        for (client, _) in everyWorker { await client.close() }
        await removeNamespace(namespace, admin: admin, logger: logger)
        await admin.close()
        try? await http.shutdown()
        await upstream.stop()

        return judge(
            scenarios: scenarios, records: all, calls: calls,
            faultInstants: faultWindow.hits, evicted: evictedAfter - evictedBefore, recovery: recovery, unreadable: unreadable,
            invalidations: faultWindow.invalidations,
            workers: options.processes ? .processes(count: options.workers, crashed: missingWorkers, rejectedCommits: rejectedCommits) : .inProcess(count: options.workers)
        )
    }

    /// How the fleet came back after the fault: the first round of asks with >= 99% hits.
    struct Recovery: Sendable {
        /// Rounds asked (the last is the one judged).
        var rounds: Int
        var hits: Int
        var requests: Int
        var elapsed: Duration
        var recovered: Bool

        var detail: String {
            (recovered ? "recovered in round \(rounds) of at most \(ChaosRunner.recoveryRounds)" : "not recovered after \(rounds) rounds")
                + " (\(Int(elapsed.milliseconds)) ms): \(hits)/\(requests) hits on the 10 most popular prompts in the last round"
        }
    }

    /// The bound on recovery: rounds in which every worker asks for the 10 most popular prompts.
    static let recoveryRounds = 5

    /// Asks round after round until a round is >= 99% hits (answers served from Redis, not computed
    /// and not received from another worker's computation), at most ``recoveryRounds`` rounds.
    static func recoveryProbe(_ fleet: [LLMCache], keys: Int, seed: UInt64) async -> Recovery {
        let started = ContinuousClock.now
        var last = Recovery(rounds: 0, hits: 0, requests: 0, elapsed: .zero, recovered: false)
        for round in 1...recoveryRounds {
            var hits = 0
            var requests = 0
            for llm in fleet {
                for key in 0..<min(10, keys) {
                    let record = await call(llm, key: key, seed: seed)
                    requests += 1
                    if let source = record.source, !record.calledUpstream, source != "received_from_other_worker" { hits += 1 }
                }
            }
            last = Recovery(rounds: round, hits: hits, requests: requests, elapsed: .now - started, recovered: Double(hits) >= 0.99 * Double(requests))
            if last.recovered { break }
        }
        return last
    }

    /// The keys whose latest stored answer's entry must still be in Redis now: created (the
    /// answer's end minus its age) less than fresh + stale ago, with 500 ms to spare. Older entries
    /// have expired by design; checking them would fail a correct cache. Answers the cache says it
    /// did not store (`uncached_redis_unavailable`, `computed_not_stored`) created no entry, so they
    /// make no key "retained" (a worker that fails open right after a freeze is not a lost write).
    static func keysStillRetained(_ records: [RecordView], now: ContinuousClock.Instant = .now) -> Set<Int> {
        let notStored: Set<String> = [CacheSource.uncachedRedisUnavailable.label, CacheSource.computedNotStored.label]
        var createdAt: [Int: ContinuousClock.Instant] = [:]
        for record in records {
            guard let source = record.source, !notStored.contains(source) else { continue }
            let created = record.end - .milliseconds(Int64(record.ageMs))
            if createdAt[record.key].map({ created > $0 }) ?? true { createdAt[record.key] = created }
        }
        return Set(createdAt.filter { $0.value + freshFor + staleFor > now + .milliseconds(500) }.keys)
    }

    /// Deletes everything a run wrote under `namespace` (entries, locks, fences, hot counters, tags,
    /// the generation and the accounting hash), so runs against a user's Redis leave nothing behind.
    static func removeNamespace(_ namespace: String, admin: RedisClient, logger: Logger) async {
        let exact = ["stampede:stats:{\(namespace)}", "stampede:gen:{\(namespace)}"]
        do {
            _ = try await admin.send(RedisCommand("DEL", exact.map { RedisArgument($0) }))
            for pattern in ["stampede:{\(namespace):*", "stampede:tag:{\(namespace)}:*"] {
                try await admin.scanKeys(matching: pattern) { keys in
                    _ = try await admin.send(RedisCommand("UNLINK", keys.map { RedisArgument($0) }))
                    return true
                }
            }
        } catch {
            logger.warning("could not remove the chaos namespace", metadata: ["namespace": "\(namespace)", "error": "\(error)"])
        }
    }

    /// Applies `mutation` to every entry of `namespace` every 50 ms until `end`.
    static func mutate(_ mutation: ChaosMutation, admin: RedisClient, namespace: String, until end: ContinuousClock.Instant, logger: Logger) async {
        switch mutation {
        case .nearCacheIgnoresInvalidations:
            return  // the workers' near-caches are built broken (``nearCache(_:options:)``)
        case .servePastStaleUntil:
            while ContinuousClock.now < end {
                do {
                    try await admin.scanKeys(matching: "stampede:{\(namespace):*}:v") { keys in
                        for key in keys {
                            guard let blob = try await admin.get(key), let stored = StoredEntry(blob: blob, now: 0) else { continue }
                            let extended = stored.freshUntil + 3_600_000
                            guard stored.staleUntil < extended else { continue }
                            var rewritten = ByteBuffer(string: "sc2 \(stored.freshUntil) \(extended) \(stored.createdAt) \(stored.computeMillis) \(stored.fence)\n")
                            rewritten.writeImmutableBuffer(stored.value)
                            _ = try await admin.send("SET", RedisArgument(key), RedisArgument(buffer: rewritten), "PX", "3600000")
                            let lock = String(key.dropLast(2)) + ":l"
                            _ = try await admin.send("SET", RedisArgument(lock), "999999999", "PX", "60000")
                        }
                        return true
                    }
                } catch {
                    logger.debug("mutation pass failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// The keys in `keys` whose entries are not in Redis.
    static func unreadableKeys(_ keys: Set<Int>, cache: StampedeCache, admin: RedisClient, seed: UInt64) async throws -> [Int] {
        var unreadable: [Int] = []
        for key in keys.sorted() {
            let entry = try await cache.entryKeys(for: prompt(key, seed: seed).cacheKey().cacheKey)
            if (try? await admin.send("EXISTS", RedisArgument(entry.value)).int) != 1 { unreadable.append(key) }
        }
        return unreadable
    }

    /// One fleet worker: its own Redis connection (settings of the chaos runs) and LLMCache, calling
    /// the simulated upstream as `name`.
    static func makeWorker(
        _ name: String, url: String, upstreamURL: String, namespace: String, http: HTTPClient = .shared, nearCache: NearCacheConfiguration? = nil,
        commitInBackground: Bool = false, logger: Logger
    ) throws -> (RedisClient, LLMCache) {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = commandTimeout
        configuration.clientName = "chaos-\(name)"
        configuration.poolSize = 1
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
        let client = try RedisClient(configuration: configuration, logger: logger)
        let openAI = OpenAIClient(configuration: OpenAIConfiguration(baseURL: upstreamURL, apiKey: "chaos", maxRetries: 0, workerID: name), httpClient: http, logger: logger)
        var cacheConfiguration = LLMCacheConfiguration(namespace: namespace, policy: policy)
        cacheConfiguration.policy.commitInBackground = commitInBackground
        cacheConfiguration.nearCache = nearCache
        let llm = try LLMCache(redis: client, upstream: openAI, configuration: cacheConfiguration, logger: logger)
        return (client, llm)
    }

    /// The near-cache the workers of a run use, if any.
    static func nearCache(_ scenarios: [ChaosScenario], options: ChaosOptions) -> NearCacheConfiguration? {
        guard options.nearCache || scenarios.contains(.lostInvalidations) || options.mutation == .nearCacheIgnoresInvalidations else { return nil }
        var configuration = NearCacheConfiguration()
        configuration.ignoresInvalidations = options.mutation == .nearCacheIgnoresInvalidations
        return configuration
    }

    /// `callers` concurrent callers per worker asking for Zipf-chosen prompts until `end`, each
    /// seeded from its worker index and caller number, so a run is reproducible from the seed
    /// whether the workers are tasks or processes.
    static func runCallers(_ workers: [(index: Int, llm: LLMCache)], callers: Int, zipf: Zipf, seed: UInt64, until end: ContinuousClock.Instant, into records: RecordLog) async {
        await withTaskGroup(of: Void.self) { group in
            for (workerIndex, llm) in workers {
                for caller in 0..<callers {
                    group.addTask {
                        var generator = SplitMix64(seed: seed &+ UInt64(workerIndex * 1_000 + caller) &* 0x9E37_79B9)
                        while ContinuousClock.now < end {
                            records.append(await call(llm, key: zipf.sample(&generator), seed: seed))
                            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...10, using: &generator)))
                        }
                    }
                }
            }
        }
    }

    static func call(_ llm: LLMCache, key: Int, seed: UInt64) async -> Record {
        let begin = ContinuousClock.now
        do {
            let result = try await withHardTimeout(requestDeadline) { try await llm.complete(prompt(key, seed: seed)) }
            return Record(key: key, start: begin, end: .now, source: result.source.label, error: nil, ageMs: result.age.milliseconds, calledUpstream: result.calledUpstream, hung: false)
        } catch is ComputeTimedOut {
            return Record(key: key, start: begin, end: .now, source: nil, error: "hung past the request deadline", ageMs: 0, calledUpstream: false, hung: true)
        } catch {
            return Record(key: key, start: begin, end: .now, source: nil, error: errorKind(error), ageMs: 0, calledUpstream: false, hung: false)
        }
    }

    static func errorKind(_ error: any Error) -> String {
        switch error {
        case UpstreamError.http(let status, _, _, _): return "upstream \(status)"
        case UpstreamError.timedOut: return "upstream timed out"
        case let upstream as UpstreamError: return "upstream: \(upstream)".prefix(60).description
        case CacheError.Code.computationFailedElsewhere: return "another worker's call failed"
        case CacheError.Code.computationTimedOut: return "computation timed out"
        case CacheError.Code.waitTimedOut: return "waited too long"
        case CacheError.Code.redisUnavailable: return "redis unavailable"
        case let cache as CacheError where cache.code == .redisFailure: return "redis: \(cache.redisError.map { "\($0.code)" } ?? "?")"
        case let cache as CacheError: return "cache: \(cache)".prefix(60).description
        default: return String(describing: error).prefix(60).description
        }
    }

    static func evictedKeys(_ admin: RedisClient) async throws -> Int {
        var evicted = 0
        for reply in try await admin.sendToEveryPrimary(RedisCommand("INFO", "stats")) {
            for line in (reply.string ?? "").split(whereSeparator: \.isNewline) where line.hasPrefix("evicted_keys:") {
                evicted += Int(line.dropFirst("evicted_keys:".count)) ?? 0
            }
        }
        return evicted
    }
}

/// The callers' records, shared by every caller task.
final class RecordLog: Sendable {
    private let records = Mutex<[ChaosRunner.RecordView]>([])
    func append(_ record: ChaosRunner.RecordView) { records.withLock { $0.append(record) } }
    func append(contentsOf more: [ChaosRunner.RecordView]) { records.withLock { $0.append(contentsOf: more) } }
    var all: [ChaosRunner.RecordView] { records.withLock { $0 } }
}
