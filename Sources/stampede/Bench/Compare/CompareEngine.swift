import ChaosKit
import Foundation
import Logging
import RedisClient
import SimulatedLLM
import StampedeCache

/// One workload of `stampede bench compare`, run once per implementation.
struct CompareWorkload: Sendable {
    enum Shape: Sendable {
        /// Every caller asks once, all at the same moment.
        case herd
        /// Each caller follows a seeded plan: `requests` requests, a think time of 0...`maxThink` before each.
        case plan(requests: Int, maxThink: Duration)
        /// Values are written first; then every caller asks as fast as it can for `duration`.
        case hotPath(duration: Duration)
    }

    var name: String
    var summary: String
    var workers: Int
    var callers: Int
    var keys: Int
    var zipf: Double
    var latency: LatencyModel
    var errorRate: Double
    var settings: ContenderSettings
    var shape: Shape
    /// A request still running after this is cut off and counted as an error ("gave up").
    var requestDeadline: Duration

    var totalCallers: Int { workers * callers }

    /// The five workloads of the issue, at full size or the bounded CI size. `timeScale` shrinks
    /// the slow-upstream workload (its latency, both locks' TTLs and its think times) so it fits a
    /// CI run; the baseline lock keeps its shape ("EX 10" becomes "PX 10000 × scale").
    static func standard(smoke: Bool, timeScale: Double) -> [CompareWorkload] {
        let llm = LatencyModel.logNormal(p50: .milliseconds(150), p99: .milliseconds(600))
        let normal = ContenderSettings(ttl: .seconds(2), staleFor: .seconds(30), computeTimeout: .seconds(5), baselineLockTTL: .seconds(10))
        let slowLatency = Duration.seconds(12) * timeScale
        return [
            CompareWorkload(
                name: "cold-herd", summary: "4 workers x \(smoke ? 16 : 64) callers ask for one cold key at once; upstream 800 ms",
                workers: 4, callers: smoke ? 16 : 64, keys: 1, zipf: 0, latency: .fixed(.milliseconds(800)), errorRate: 0,
                settings: ContenderSettings(ttl: .seconds(60), staleFor: .seconds(60), computeTimeout: .seconds(5), baselineLockTTL: .seconds(10)),
                shape: .herd, requestDeadline: .seconds(30)
            ),
            CompareWorkload(
                name: "steady-zipf", summary: "4 workers x 16 callers, 200 keys, Zipf s=1.1, fresh for 2 s so keys expire; upstream p50 150 / p99 600 ms",
                workers: 4, callers: 16, keys: 200, zipf: 1.1, latency: llm, errorRate: 0, settings: normal,
                shape: .plan(requests: smoke ? 40 : 250, maxThink: .milliseconds(40)), requestDeadline: .seconds(30)
            ),
            CompareWorkload(
                name: "slow-upstream",
                summary: "4 workers x \(smoke ? 8 : 16) callers, 4 keys, upstream \(formatted(slowLatency.secondsDouble, 1)) s: longer than the baseline's \(formatted(10 * timeScale, 1)) s lock",
                workers: 4, callers: smoke ? 8 : 16, keys: 4, zipf: 0, latency: .fixed(slowLatency), errorRate: 0,
                settings: ContenderSettings(
                    ttl: .seconds(120) * timeScale, staleFor: .seconds(120) * timeScale, computeTimeout: .seconds(20) * timeScale,
                    baselineLockTTL: .seconds(10) * timeScale
                ),
                shape: .plan(requests: 3, maxThink: .seconds(2) * timeScale), requestDeadline: .seconds(60) * timeScale + .seconds(5)
            ),
            CompareWorkload(
                name: "flaky-upstream", summary: "4 workers x 16 callers, 50 keys, Zipf s=1.1, 30% of upstream calls fail; fresh for 2 s",
                workers: 4, callers: 16, keys: 50, zipf: 1.1, latency: llm, errorRate: 0.3, settings: normal,
                shape: .plan(requests: smoke ? 30 : 150, maxThink: .milliseconds(40)), requestDeadline: .seconds(30)
            ),
            CompareWorkload(
                name: "hot-path", summary: "fresh hits only: 4 workers x 16 callers (64 concurrent) over 100 cached keys, 1 KiB values",
                workers: 4, callers: 16, keys: 100, zipf: 0, latency: .fixed(.milliseconds(1)), errorRate: 0,
                settings: ContenderSettings(ttl: .seconds(3600), staleFor: .seconds(3600), computeTimeout: .seconds(5), baselineLockTTL: .seconds(10)),
                shape: .hotPath(duration: smoke ? .seconds(1) : .seconds(5)), requestDeadline: .seconds(10)
            ),
        ]
    }
}

/// One request's outcome.
struct CompareRecord: Sendable {
    var key: Int
    var start: ContinuousClock.Instant
    var latency: Duration
    var error: String?
    var stale: Bool
}

/// What one implementation did on one workload.
struct ImplementationResult: Sendable {
    var implementation: Implementation
    var requests: Int
    var upstreamCalls: Int
    /// The fewest upstream calls that could have served these requests: one per key per freshness
    /// period in which it was asked for (greedy windows of `ttl` from each uncovered request).
    var minimumCalls: Int
    /// Caller latency percentiles, ms (computed once from the samples).
    var p50Ms: Double
    var p99Ms: Double
    var errors: [String: Int]
    var staleServed: Int
    var wall: Duration
    var opsPerSecond: Double?

    init(
        implementation: Implementation, requests: Int, upstreamCalls: Int, minimumCalls: Int, latenciesNs: [Int64],
        errors: [String: Int], staleServed: Int, wall: Duration, opsPerSecond: Double?
    ) {
        self.implementation = implementation
        self.requests = requests
        self.upstreamCalls = upstreamCalls
        self.minimumCalls = minimumCalls
        var samples = LatencySamples()
        for value in latenciesNs { samples.append(value) }
        p50Ms = samples.percentileMicros(50) / 1_000
        p99Ms = samples.percentileMicros(99) / 1_000
        self.errors = errors
        self.staleServed = staleServed
        self.wall = wall
        self.opsPerSecond = opsPerSecond
    }

    var extraCalls: Int { max(0, upstreamCalls - minimumCalls) }
    var errorCount: Int { errors.values.reduce(0, +) }
}

/// A workload's results for every implementation.
struct WorkloadResult: Sendable {
    var workload: CompareWorkload
    var results: [ImplementationResult]

    func result(_ implementation: Implementation) -> ImplementationResult? { results.first { $0.implementation == implementation } }
}

enum CompareEngine {
    static let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `workload` with every implementation against the Redis at `url`: one after another,
    /// or, for the hot path, in interleaved rounds. `progress` gets a line as each one starts and ends.
    static func run(_ workload: CompareWorkload, url: String, seed: UInt64, hotRounds: Int, progress: (String) -> Void) async throws -> [ImplementationResult] {
        if case .hotPath(let duration) = workload.shape {
            progress("\(workload.name): every implementation, \(hotRounds) interleaved rounds ...")
            return try await runHotPath(workload, duration: duration, url: url, seed: seed, rounds: hotRounds)
        }
        var results: [ImplementationResult] = []
        for implementation in Implementation.allCases {
            progress("\(workload.name): \(implementation.label) ...")
            let upstream = BenchUpstream(latency: .model(workload.latency), errorRate: workload.errorRate, seed: seed)
            let contenders = try await makeContenders(implementation, workload, url: url, runID: "\(UInt32.random(in: 0..<UInt32.max))")
            let result = await measure(workload, implementation, contenders: contenders, upstream: upstream, seed: seed)
            for contender in contenders { await contender.close() }
            progress("  \(result.requests) requests, \(result.upstreamCalls) upstream calls, p99 \(formatted(result.p99Ms)) ms, \(result.errorCount) errors")
            results.append(result)
        }
        return results
    }

    /// One instance of `implementation` per worker, each with its own Redis connection.
    private static func makeContenders(_ implementation: Implementation, _ workload: CompareWorkload, url: String, runID: String) async throws -> [any Contender] {
        var contenders: [any Contender] = []
        for _ in 0..<workload.workers {
            contenders.append(try await BenchConnections.make(implementation, url: url, runID: runID, settings: workload.settings, logger: quiet))
        }
        return contenders
    }

    /// The herd or plan workloads (the hot path has its own loop).
    private static func measure(
        _ workload: CompareWorkload, _ implementation: Implementation, contenders: [any Contender], upstream: BenchUpstream, seed: UInt64
    ) async -> ImplementationResult {
        let log = Box<[CompareRecord]>([])
        let deadline = workload.requestDeadline
        let zipf = Zipf(count: workload.keys, exponent: workload.zipf)

        @Sendable func ask(_ contender: any Contender, key: Int) async -> CompareRecord {
            let start = ContinuousClock.now
            do {
                let fetched = try await withHardTimeout(deadline) { try await contender.fetch("k\(key)", upstream: upstream) }
                return CompareRecord(key: key, start: start, latency: .now - start, error: nil, stale: fetched.stale)
            } catch is ComputeTimedOut {
                return CompareRecord(key: key, start: start, latency: .now - start, error: "gave up after \(Int(deadline.secondsDouble)) s", stale: false)
            } catch is BenchUpstream.Failure {
                return CompareRecord(key: key, start: start, latency: .now - start, error: "upstream error", stale: false)
            } catch CacheError.Code.computationFailedElsewhere {
                return CompareRecord(key: key, start: start, latency: .now - start, error: "upstream error (another worker's call)", stale: false)
            } catch {
                return CompareRecord(key: key, start: start, latency: .now - start, error: String(describing: error).prefix(60).description, stale: false)
            }
        }

        let started = ContinuousClock.now
        switch workload.shape {
        case .herd:
            await withTaskGroup(of: CompareRecord.self) { group in
                for caller in 0..<workload.totalCallers {
                    let contender = contenders[caller % contenders.count]
                    group.addTask { await ask(contender, key: 0) }
                }
                for await record in group { log.update { $0.append(record) } }
            }
        case .plan(let requests, let maxThink):
            let thinkMs = Int(maxThink.secondsDouble * 1_000)
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<workload.workers {
                    for caller in 0..<workload.callers {
                        let contender = contenders[worker]
                        group.addTask {
                            var generator = SplitMix64(seed: seed &+ UInt64(worker * 10_000 + caller) &* 0x9E37_79B9)
                            var mine: [CompareRecord] = []
                            for _ in 0..<requests {
                                let key = zipf.sample(&generator)
                                try? await Task.sleep(for: .milliseconds(Int.random(in: 0...max(0, thinkMs), using: &generator)))
                                mine.append(await ask(contender, key: key))
                            }
                            let records = mine
                            log.update { $0.append(contentsOf: records) }
                        }
                    }
                }
            }
        case .hotPath:
            break  // run() sends the hot path to runHotPath
        }
        let wall = ContinuousClock.now - started
        let records = log.value
        var errors: [String: Int] = [:]
        for record in records { if let error = record.error { errors[error, default: 0] += 1 } }
        let minimum: Int
        switch workload.shape {
        case .herd: minimum = 1
        case .hotPath: minimum = 0
        case .plan: minimum = minimumCalls(records, window: workload.settings.ttl)
        }
        return ImplementationResult(
            implementation: implementation, requests: records.count, upstreamCalls: upstream.calls, minimumCalls: minimum,
            latenciesNs: records.map { $0.latency.nanosecondsClamped }, errors: errors, staleServed: records.filter(\.stale).count, wall: wall,
            opsPerSecond: nil
        )
    }

    /// The hot path: values written first, then every implementation in turn, round by round (the
    /// order rotating), so drift in the machine's speed hits all of them alike. Requests are timed
    /// bare (no per-request deadline task), since nothing here waits on the upstream.
    private static func runHotPath(_ workload: CompareWorkload, duration: Duration, url: String, seed: UInt64, rounds: Int) async throws -> [ImplementationResult] {
        let runID = "\(UInt32.random(in: 0..<UInt32.max))"
        let upstream = BenchUpstream(latency: .model(workload.latency), errorRate: 0, seed: seed)
        var fleets: [Implementation: [any Contender]] = [:]
        var prefillCalls: [Implementation: Int] = [:]
        for implementation in Implementation.allCases {
            let contenders = try await makeContenders(implementation, workload, url: url, runID: runID)
            let before = upstream.calls
            for key in 0..<workload.keys { _ = try await contenders[0].fetch("k\(key)", upstream: upstream) }
            prefillCalls[implementation] = upstream.calls - before
            fleets[implementation] = contenders
        }
        var latencies: [Implementation: [Int64]] = [:]
        var errors: [Implementation: [String: Int]] = [:]
        var measured: [Implementation: Duration] = [:]
        var callsDuring: [Implementation: Int] = [:]
        let slice = duration / max(1, rounds)
        for round in 0..<max(1, rounds) {
            let all = Implementation.allCases
            for offset in 0..<all.count {
                let implementation = all[(round + offset) % all.count]
                let contenders = fleets[implementation]!
                let log = Box<[(Int64, String?)]>([])
                let before = upstream.calls
                let start = ContinuousClock.now
                let end = start + slice
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<workload.workers {
                        for caller in 0..<workload.callers {
                            let contender = contenders[worker]
                            group.addTask {
                                var generator = SplitMix64(seed: seed &+ UInt64(round * 1_000_000 + worker * 10_000 + caller))
                                var mine: [(Int64, String?)] = []
                                mine.reserveCapacity(20_000)
                                while ContinuousClock.now < end {
                                    let key = Int.random(in: 0..<workload.keys, using: &generator)
                                    let begin = ContinuousClock.now
                                    do {
                                        _ = try await contender.fetch("k\(key)", upstream: upstream)
                                        mine.append(((ContinuousClock.now - begin).nanosecondsClamped, nil))
                                    } catch {
                                        mine.append(((ContinuousClock.now - begin).nanosecondsClamped, String(describing: error).prefix(60).description))
                                    }
                                }
                                let records = mine
                                log.update { $0.append(contentsOf: records) }
                            }
                        }
                    }
                }
                measured[implementation, default: .zero] += ContinuousClock.now - start
                callsDuring[implementation, default: 0] += upstream.calls - before
                for (latency, error) in log.value {
                    latencies[implementation, default: []].append(latency)
                    if let error { errors[implementation, default: [:]][error, default: 0] += 1 }
                }
            }
        }
        for contenders in fleets.values { for contender in contenders { await contender.close() } }
        return Implementation.allCases.map { implementation in
            let samples = latencies[implementation] ?? []
            let time = measured[implementation] ?? .zero
            return ImplementationResult(
                implementation: implementation, requests: samples.count, upstreamCalls: callsDuring[implementation] ?? 0, minimumCalls: 0,
                latenciesNs: samples, errors: errors[implementation] ?? [:], staleServed: 0, wall: time,
                opsPerSecond: time > .zero ? Double(samples.count) / time.secondsDouble : nil
            )
        }
    }

    /// One call per key per freshness period in which it was asked for: greedy windows of `window`
    /// starting at each request no earlier window covers.
    static func minimumCalls(_ records: [CompareRecord], window: Duration) -> Int {
        var total = 0
        for (_, requests) in Dictionary(grouping: records, by: \.key) {
            var coveredUntil: ContinuousClock.Instant?
            for start in requests.map(\.start).sorted() where coveredUntil.map({ start >= $0 }) ?? true {
                total += 1
                coveredUntil = start + window
            }
        }
        return total
    }
}
