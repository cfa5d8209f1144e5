import ArgumentParser
import ChaosKit
import Foundation
import Logging
import NIOCore
import RedisClient
import StampedeCache
import Synchronization

/// `stampede bench cache`: fresh-hit cost vs a plain GET, follower wake-up after a commit, and a herd.
struct CacheBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Benchmark StampedeCache: fresh-hit latency vs GET, follower wake-up after commit, herd of 200 callers."
    )

    @Option(name: .customLong("redis-url"), help: "Redis to use (default: $REDIS_URL, else a private redis-server started for this run).")
    var redisURL: String?
    @OptionGroup(title: "TLS (rediss:// URLs)") var tls: TLSOptions

    @Option(help: "Fresh hits (and plain GETs) measured per round.")
    var requests: Int = 10_000

    @Option(help: "Rounds; cache hits and GETs alternate round by round.")
    var rounds: Int = 5

    @Option(help: "Leader/follower hand-overs measured for the wake-up latency.")
    var handovers: Int = 200

    @Option(help: "Herd size (callers), spread over 4 workers.")
    var herdCallers: Int = 200

    @Option(help: "Compute time of the herd's one computation, in milliseconds.")
    var herdComputeMs: Int = 500

    @Option(help: "Value size in bytes for the hit measurement (a typical LLM answer is 1-4 KiB).")
    var valueBytes: Int = 1_024

    @Option(help: "Concurrent callers for the hot-path throughput rounds (near-cache and Redis hits vs GET).")
    var callers: Int = 64

    @Option(help: "Seconds per throughput round (each contender runs 2 rounds, alternating).")
    var throughputSeconds: Double = 1

    @Option(help: "Invalidations timed (writer SET to every near-cache dropping the entry).")
    var invalidations: Int = 200

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        _ = try NumericInput.integer(requests, "--requests", in: 1...100_000_000)
        _ = try NumericInput.integer(rounds, "--rounds", in: 1...1_000)
        _ = try NumericInput.integer(handovers, "--handovers", in: 1...1_000_000)
        _ = try NumericInput.integer(herdCallers, "--herd-callers", in: 4...100_000)
        _ = try NumericInput.integer(herdComputeMs, "--herd-compute-ms", in: 1...9_000)
        _ = try NumericInput.integer(valueBytes, "--value-bytes", in: 1...(8 << 20))
        _ = try NumericInput.integer(callers, "--callers", in: 1...10_000)
        _ = try NumericInput.integer(invalidations, "--invalidations", in: 1...1_000_000)
        guard throughputSeconds.isFinite, throughputSeconds >= 0.05, throughputSeconds <= 600 else {
            throw ValidationError("--throughput-seconds must be between 0.05 and 600, got \(throughputSeconds)")
        }
    }

    func run() async throws {
        let report = try await RedisTarget.with(explicitURL: redisURL, tls: tls) { url in try await measure(url: url) }
        print(json ? report.json : report.table)
    }

    private static let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A worker's client and cache, the cache started and running (as a service would be).
    private struct BenchWorker {
        let client: RedisClient
        let cache: StampedeCache
        let running: BackgroundRun

        func stop() async {
            await cache.close()
            await running.finished()
            await client.close()
        }
    }

    private func worker(_ url: String, namespace: String, policy: CachePolicy, nearCache: NearCacheConfiguration? = nil) async throws -> BenchWorker {
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = 1
        let client = try RedisClient(configuration: configuration, logger: Self.quiet)
        let cache = try StampedeCache(redis: client, namespace: namespace, policy: policy, logger: Self.quiet, nearCache: nearCache)
        await cache.start()  // scripts loaded and notice channel subscribed before the first measurement
        return BenchWorker(client: client, cache: cache, running: BackgroundRun(cache.run))
    }

    private func measure(url: String) async throws -> Report {
        let namespace = "bench\(UInt32.random(in: 0..<UInt32.max))"
        let policy = CachePolicy(freshFor: .seconds(3600), staleFor: .seconds(3600), computeTimeout: .seconds(10), lockTTL: .seconds(15), ttlJitter: 0)
        var report = Report()

        // 1. Fresh hit vs plain GET of the same bytes, same client, callers on the client's event loop.
        let hotPath = try await worker(url, namespace: namespace, policy: policy)
        let (client, cache) = (hotPath.client, hotPath.cache)
        let payload = (0..<valueBytes).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        _ = try await cache.value(for: "hit") { payload }
        try await client.set("stampede:bench:plain", to: RedisArgument(bytes: payload))
        let get = RedisCommand("GET", "stampede:bench:plain")
        let entry = try await cache.entryKeys(for: "hit")
        let timeAndGet = [RedisCommand("TIME"), RedisCommand("GET", RedisArgument(entry.value))]
        // Request by request, the three alternate: a VM's latency drifts over seconds, and
        // alternating makes the drift hit all three alike. Callers run on the client's event loop.
        let count = requests * rounds
        let samples = try await withTaskExecutorPreference(client.taskExecutor) {
            var hits = LatencySamples(), gets = LatencySamples(), floor = LatencySamples()
            let clock = ContinuousClock()
            for index in 0..<(count + 2_000) {
                let warm = index < 2_000
                var start = clock.now
                let result = try await cache.value(for: "hit") { [] }
                if !warm { hits.append((clock.now - start).nanosecondsClamped) }
                guard result.source == .freshHit, result.value.count == payload.count else { throw ValidationError("expected a fresh hit, got \(result.source)") }
                start = clock.now
                let reply = try await client.send(get)
                if !warm { gets.append((clock.now - start).nanosecondsClamped) }
                guard reply.buffer?.readableBytes == payload.count else { throw ValidationError("GET returned the wrong value") }
                start = clock.now
                _ = try await client.send(pipeline: timeAndGet)
                if !warm { floor.append((clock.now - start).nanosecondsClamped) }
            }
            // CPU per operation: this process's CPU time (every thread, getrusage) over blocks of
            // hits and of GETs, alternating. Tells whether a hit's extra latency is work done here
            // or time spent waiting.
            var cpu = (hits: 0.0, gets: 0.0)
            let block = max(1, min(2_000, count))
            for _ in 0..<4 {
                var before = Self.processCPUMicros()
                for _ in 0..<block {
                    guard try await cache.value(for: "hit") { [] }.source == .freshHit else { throw ValidationError("expected a fresh hit") }
                }
                cpu.hits += Self.processCPUMicros() - before
                before = Self.processCPUMicros()
                for _ in 0..<block { _ = try await client.send(get) }
                cpu.gets += Self.processCPUMicros() - before
            }
            return (hits, gets, floor, (cpu.hits / Double(4 * block), cpu.gets / Double(4 * block)))
        }
        let (hits, gets, floor, cpuPerOperation) = samples
        report.timeAndGet = floor
        report.hits = hits
        report.gets = gets
        report.hitCPUMicros = cpuPerOperation.0
        report.getCPUMicros = cpuPerOperation.1
        await hotPath.stop()

        // 2. Follower wake-up: a leader in one worker computes; a follower in another waits for it.
        let leaderWorker = try await worker(url, namespace: namespace, policy: policy)
        let followerWorker = try await worker(url, namespace: namespace, policy: policy)
        let (leader, follower) = (leaderWorker.cache, followerWorker.cache)
        var wakeups = LatencySamples()
        let computeDone = Box<ContinuousClock.Instant?>(nil)
        for index in 0..<handovers {
            let key = "handover-\(index)"
            // Synchronised on events, not sleeps: the follower asks only once the leader holds the
            // lock, and the leader's value is ready only once the follower is waiting for it.
            let (computing, signal) = AsyncStream<Void>.makeStream()
            let leading = Task {
                try await leader.value(for: key) {
                    signal.yield()
                    signal.finish()
                    let deadline = ContinuousClock.now + .seconds(30)
                    while follower.waitingFollowers == 0 {
                        guard ContinuousClock.now < deadline else { throw ValidationError("hand-over \(index): the follower never waited") }
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    computeDone.set(.now)  // the value is ready; what follows is commit + notice + re-check
                    return [1, 2, 3]
                }
            }
            for await _ in computing { break }
            let result = try await follower.value(for: key) { () async throws -> [UInt8] in throw ValidationError("the follower must not compute") }
            let returned = ContinuousClock.now
            _ = try await leading.value
            guard result.source == .receivedFromOtherWorker, let done = computeDone.value else {
                throw ValidationError("hand-over \(index): follower got \(result.source)")
            }
            wakeups.append((returned - done).nanosecondsClamped)
        }
        report.wakeups = wakeups
        report.wakeupsByNotice = follower.diagnostics.wakeupsByNotice
        report.wakeupsByRecheck = follower.diagnostics.wakeupsByRecheck
        await leaderWorker.stop()
        await followerWorker.stop()

        // 3. Herd: callers spread over 4 workers, one cold key.
        var workers: [BenchWorker] = []
        for _ in 0..<4 { workers.append(try await worker(url, namespace: namespace, policy: policy)) }
        let computations = Box(0)
        let computeTime = Duration.milliseconds(herdComputeMs)
        let started = ContinuousClock.now
        let values = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for caller in 0..<herdCallers {
                let cache = workers[caller % workers.count].cache
                group.addTask {
                    try await cache.value(for: "herd") {
                        computations.update { $0 += 1 }
                        try await Task.sleep(for: computeTime)
                        return Array("herd".utf8)
                    }.value
                }
            }
            return try await group.reduce(into: Set<[UInt8]>()) { $0.insert($1) }
        }
        report.herdTotal = ContinuousClock.now - started
        report.herdComputations = computations.value
        report.herdDistinctValues = values.count
        report.herdCompute = computeTime
        for worker in workers { await worker.stop() }

        // 4. The near-cache: its hit latency, hot-path throughput vs GET (and Redis hits vs GET),
        //    and how long an invalidation takes to reach every near-cache.
        try await measureNearCache(url: url, namespace: namespace, policy: policy, payload: payload, into: &report)
        return report
    }

    private func measureNearCache(url: String, namespace: String, policy: CachePolicy, payload: [UInt8], into report: inout Report) async throws {
        let near = NearCacheConfiguration(maxEntries: 10_000, maxBytes: 64 << 20)
        let nearWorker = try await worker(url, namespace: namespace, policy: policy, nearCache: near)
        let plainWorker = try await worker(url, namespace: namespace, policy: policy)
        _ = try await nearWorker.cache.value(for: "near-hit") { payload }
        _ = try await nearWorker.cache.value(for: "near-hit") { [] }  // read once: now held
        let nearCache = nearWorker.cache
        // Latency of one near hit, one caller.
        // (A hit that becomes hot has its retention slid once, which Redis reports as a change:
        // that read, and the next, go to Redis. They are counted, and measured like the rest.)
        var nearHits = LatencySamples()
        var fromRedis = 0
        let clock = ContinuousClock()
        for index in 0..<(requests * rounds + 2_000) {
            let start = clock.now
            let result = try await nearCache.buffer(for: "near-hit") { ByteBuffer() }
            if index >= 2_000 {
                nearHits.append((clock.now - start).nanosecondsClamped)
                if result.source != .freshHitNear { fromRedis += 1 }
            }
            guard result.source == .freshHitNear || result.source == .freshHit, result.value.readableBytes == payload.count else {
                throw ValidationError("expected a fresh hit, got \(result.source)")
            }
        }
        report.nearHits = nearHits
        report.nearHitsFromRedis = fromRedis

        // Throughput at `callers` concurrent callers, each on its own key (no in-process
        // coalescing helps): near hits, Redis hits, bare GETs, alternating rounds. The caches are
        // read with buffer(for:), which like GET returns the bytes without copying them.
        let plainCache = plainWorker.cache
        let plainClient = plainWorker.client
        for caller in 0..<callers {
            _ = try await plainCache.value(for: "hot-\(caller)") { payload }
            _ = try await nearCache.value(for: "hot-\(caller)") { [] }  // read once: now held
            try await plainClient.set("stampede:bench:plain-\(caller)", to: RedisArgument(bytes: payload))
        }
        let window = Duration.milliseconds(Int64(throughputSeconds * 1_000))
        var totals = (near: 0, redis: 0, get: 0)
        for _ in 0..<2 {
            totals.get += try await throughput(callers: callers, for: window) { caller in
                let get = RedisCommand("GET", RedisArgument("stampede:bench:plain-\(caller)"))
                return {
                    guard try await plainClient.send(get).buffer?.readableBytes == payload.count else { throw ValidationError("GET returned the wrong value") }
                }
            }
            totals.redis += try await throughput(callers: callers, for: window) { caller in
                let key = "hot-\(caller)"
                return {
                    let result = try await plainCache.buffer(for: key) { ByteBuffer() }
                    guard result.source == .freshHit else { throw ValidationError("expected a fresh hit, got \(result.source)") }
                }
            }
            totals.near += try await throughput(callers: callers, for: window) { caller in
                let key = "hot-\(caller)"
                return {
                let result = try await nearCache.buffer(for: key) { ByteBuffer() }
                guard result.source == .freshHitNear || result.source == .freshHit else { throw ValidationError("expected a fresh hit, got \(result.source)") }
                }
            }
        }
        let seconds = 2 * window.secondsDouble
        report.throughputCallers = callers
        report.nearOpsPerSecond = Double(totals.near) / seconds
        report.redisHitOpsPerSecond = Double(totals.redis) / seconds
        report.getOpsPerSecond = Double(totals.get) / seconds
        await plainWorker.stop()

        // Invalidation: a writer SETs the entry; time until every near-cache has dropped it.
        var readers: [BenchWorker] = [nearWorker]
        for _ in 0..<2 { readers.append(try await worker(url, namespace: namespace, policy: policy, nearCache: near)) }
        let writer = try makeWriterClient(url)
        let entry = try await nearCache.entryKeys(for: "near-hit")
        let blob = try await writer.send("GET", RedisArgument(entry.value))
        guard let stored = blob.buffer else { throw ValidationError("the benchmark entry is missing") }
        var samples = LatencySamples()
        for _ in 0..<invalidations {
            for reader in readers {
                for _ in 0..<2 { _ = try await reader.cache.value(for: "near-hit") { [] } }
                guard reader.cache.nearCacheDiagnostics?.entries ?? 0 >= 1 else { throw ValidationError("a reader holds nothing to invalidate") }
            }
            let (dropped, signal) = AsyncStream<ContinuousClock.Instant>.makeStream()
            for reader in readers {
                reader.cache.observeNearCacheInvalidations { count in if count > 0 { signal.yield(.now) } }
            }
            let start = clock.now
            _ = try await writer.send("SET", RedisArgument(entry.value), RedisArgument(buffer: stored), "KEEPTTL")
            var last = start
            var seen = 0
            for await instant in dropped {
                last = max(last, instant)
                seen += 1
                if seen == readers.count { break }
            }
            samples.append((last - start).nanosecondsClamped)
            for reader in readers { reader.cache.observeNearCacheInvalidations(nil) }
        }
        report.invalidations = samples
        report.invalidationReaders = readers.count
        await writer.close()
        for reader in readers { await reader.stop() }
    }

    private func makeWriterClient(_ url: String) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = 1
        return try RedisClient(configuration: configuration, logger: Self.quiet)
    }

    /// Operations completed in `window` by `callers` concurrent loops, caller `i` repeating `operation(i)`.
    private func throughput(
        callers: Int, for window: Duration, _ operation: @escaping @Sendable (Int) -> @Sendable () async throws -> Void
    ) async throws -> Int {
        let deadline = ContinuousClock.now + window
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<callers {
                let operation = operation(caller)
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline {
                        try await operation()
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// This process's CPU time so far, user and system, in microseconds.
    static func processCPUMicros() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func micros(_ time: timeval) -> Double { Double(time.tv_sec) * 1_000_000 + Double(time.tv_usec) }
        return micros(usage.ru_utime) + micros(usage.ru_stime)
    }

    struct Report {
        var timeAndGet = LatencySamples()
        /// CPU time of this process per fresh hit and per plain GET, one caller (µs).
        var hitCPUMicros = 0.0
        var getCPUMicros = 0.0
        var hits = LatencySamples()
        var gets = LatencySamples()
        var wakeups = LatencySamples()
        var wakeupsByNotice = 0
        var wakeupsByRecheck = 0
        var herdTotal: Duration = .zero
        var herdCompute: Duration = .zero
        var herdComputations = 0
        var herdDistinctValues = 0
        var nearHits = LatencySamples()
        var nearHitsFromRedis = 0
        var throughputCallers = 0
        var nearOpsPerSecond = 0.0
        var redisHitOpsPerSecond = 0.0
        var getOpsPerSecond = 0.0
        var invalidations = LatencySamples()
        var invalidationReaders = 0
        /// How idle vCPUs wait on this machine (explains the round-trip latencies).
        var machine = IdleWakeupPolicy.current()

        var nearRatio: Double { getOpsPerSecond > 0 ? nearOpsPerSecond / getOpsPerSecond : 0 }
        var redisHitRatio: Double { getOpsPerSecond > 0 ? redisHitOpsPerSecond / getOpsPerSecond : 0 }

        var hitRatio: Double { hits.percentileMicros(50) / gets.percentileMicros(50) }
        var herdOverheadMs: Double { (herdTotal - herdCompute).secondsDouble * 1_000 }

        var table: String {
            (machine.summary.map { $0 + "\n\n" } ?? "") + """
            Fresh hit vs plain GET of the same value (same client, callers on its event loop, alternating request by request), \(hits.count) each
              StampedeCache fresh hit   p50 \(formatted(hits.percentileMicros(50))) µs   p99 \(formatted(hits.percentileMicros(99))) µs
              plain GET                 p50 \(formatted(gets.percentileMicros(50))) µs   p99 \(formatted(gets.percentileMicros(99))) µs
              TIME+GET pipelined        p50 \(formatted(timeAndGet.percentileMicros(50))) µs   p99 \(formatted(timeAndGet.percentileMicros(99))) µs   (the hit's Redis work: the server clock decides freshness)
              ratio p50: \(formatted(hitRatio, 2))x -> goal <= 1.05 \(hitRatio <= 1.05 ? "met" : "NOT met")
              CPU of this process per operation (blocks of each, alternating): hit \(formatted(hitCPUMicros, 1)) µs   GET \(formatted(getCPUMicros, 1)) µs

            Follower wake-up, from the leader's value being ready to the follower returning it (\(wakeups.count) hand-overs;
            includes the commit round trip, the pub/sub notice and the follower's re-read)
              p50 \(formatted(wakeups.percentileMicros(50) / 1_000, 2)) ms   p99 \(formatted(wakeups.percentileMicros(99) / 1_000, 2)) ms -> goal p99 <= 5 ms \(wakeups.percentileMicros(99) <= 5_000 ? "met" : "NOT met")
              woken by notice: \(wakeupsByNotice), by fallback re-check: \(wakeupsByRecheck)

            Herd: \(herdDistinctValues == 1 ? "" : "(!) ")callers over 4 workers on one cold key, compute \(formatted(herdCompute.secondsDouble * 1_000, 0)) ms
              computations: \(herdComputations) (goal 1)   distinct values served: \(herdDistinctValues)
              total \(formatted(herdTotal.secondsDouble * 1_000, 1)) ms = compute + \(formatted(herdOverheadMs, 1)) ms overhead -> goal <= 10 ms \(herdOverheadMs <= 10 ? "met" : "NOT met")

            Near-cache (L1, kept coherent by CLIENT TRACKING)
              near hit (buffer(for:)), one caller p50 \(formatted(nearHits.percentileMicros(50), 2)) µs   p99 \(formatted(nearHits.percentileMicros(99), 2)) µs -> goal p50 <= 1 µs \(nearHits.percentileMicros(50) <= 1 ? "met" : "NOT met")   (\(nearHitsFromRedis) of \(nearHits.count) went to Redis)
              \(throughputCallers) callers, ops/s     near hits \(formatted(nearOpsPerSecond, 0))   Redis hits \(formatted(redisHitOpsPerSecond, 0))   bare GET \(formatted(getOpsPerSecond, 0))
              near hits vs GET: \(formatted(nearRatio, 1))x -> goal >= 20 \(nearRatio >= 20 ? "met" : "NOT met")
              Redis (L2) hits vs GET: \(formatted(redisHitRatio, 2))x -> goal >= 1.0 \(redisHitRatio >= 1.0 ? "met" : "NOT met")
              invalidation, writer's SET to all \(invalidationReaders) near-caches dropping the entry (\(invalidations.count) writes)
                p50 \(formatted(invalidations.percentileMicros(50) / 1_000, 3)) ms   p99 \(formatted(invalidations.percentileMicros(99) / 1_000, 3)) ms -> goal p99 <= 2 ms \(invalidations.percentileMicros(99) <= 2_000 ? "met" : "NOT met")
            """
        }

        var json: String {
            var object: [String: Any] = [
                "hit_p50_us": hits.percentileMicros(50),
                "hit_p99_us": hits.percentileMicros(99),
                "get_p50_us": gets.percentileMicros(50),
                "get_p99_us": gets.percentileMicros(99),
                "time_get_pipeline_p50_us": timeAndGet.percentileMicros(50),
                "hit_p50_ratio_vs_get": hitRatio,
                "hit_cpu_us_per_op": hitCPUMicros,
                "get_cpu_us_per_op": getCPUMicros,
                "follower_wake_p50_ms": wakeups.percentileMicros(50) / 1_000,
                "follower_wake_p99_ms": wakeups.percentileMicros(99) / 1_000,
                "follower_wakeups_by_notice": wakeupsByNotice,
                "follower_wakeups_by_recheck": wakeupsByRecheck,
                "herd_computations": herdComputations,
                "herd_distinct_values": herdDistinctValues,
                "herd_total_ms": herdTotal.secondsDouble * 1_000,
                "herd_compute_ms": herdCompute.secondsDouble * 1_000,
                "herd_overhead_ms": herdOverheadMs,
                "l1_hit_p50_us": nearHits.percentileMicros(50),
                "l1_hit_p99_us": nearHits.percentileMicros(99),
                "l1_hit_reads_from_redis": nearHitsFromRedis,
                "l1_hot_path_ops_per_s": nearOpsPerSecond,
                "l2_hot_path_ops_per_s": redisHitOpsPerSecond,
                "get_hot_path_ops_per_s": getOpsPerSecond,
                "hot_path_callers": throughputCallers,
                "l1_hot_path_ops_ratio_vs_get": nearRatio,
                "hot_path_ops_ratio_vs_get": redisHitRatio,
                "invalidation_p50_ms": invalidations.percentileMicros(50) / 1_000,
                "invalidation_p99_ms": invalidations.percentileMicros(99) / 1_000,
            ]
            object.merge(machine.jsonFields) { first, _ in first }
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
    }
}

/// A value shared between tasks, behind a lock.
final class Box<T: Sendable>: Sendable {
    private let storage: Mutex<T>
    init(_ value: T) { storage = Mutex(value) }
    var value: T { storage.withLock { $0 } }
    func set(_ value: T) { storage.withLock { $0 = value } }
    func update(_ body: (inout T) -> Void) { storage.withLock { body(&$0) } }
}
