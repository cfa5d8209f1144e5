import ChaosKit
import Foundation
import Logging
import RedisClient
import StampedeCache

/// One point of the grid, in simulated (real-world) time.
struct TuneSetting: Sendable, Hashable {
    var freshFor: Double
    var staleFor: Double
    var lockTTL: Double
    /// `nil`: hot-key promotion off.
    var hot: Hot?

    struct Hot: Sendable, Hashable {
        var threshold: Int
        var window: Double
        var ttl: Double
    }

    /// The compute timeout that goes with `lockTTL`: the lock must outlive it by the policy's margin (10%, at least 1 s).
    var computeTimeout: Double { max(lockTTL - max(1, lockTTL / 11), lockTTL / 2) }

    var label: String {
        "fresh \(Self.short(freshFor)) stale \(Self.short(staleFor)) lock \(Self.short(lockTTL)) hot " + (hot.map { "\($0.threshold)/\(Self.short($0.window))/\(Self.short($0.ttl))" } ?? "off")
    }

    static func short(_ seconds: Double) -> String {
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(formatted(seconds))s"
    }

    /// The policy the real cache runs with: every duration divided by `compression`.
    func policy(compression: Double) -> CachePolicy {
        func real(_ seconds: Double) -> Duration { max(.milliseconds(1), .seconds(seconds / compression)) }
        let compute = real(computeTimeout)
        return CachePolicy(
            freshFor: real(freshFor), staleFor: staleFor > 0 ? real(staleFor) : .zero, computeTimeout: compute,
            lockTTL: max(real(lockTTL), compute + max(.seconds(1), compute / 10)),
            hot: hot.map { .init(threshold: $0.threshold, window: real($0.window), ttl: real($0.ttl)) } ?? .init(threshold: 1_000_000, window: .seconds(60), ttl: .zero),
            ttlJitter: 0, failSafeThrottle: real(5), followerRecheckInterval: real(1), fenceRetention: max(.seconds(60), real(3600))
        )
    }
}

/// What one setting did with the replayed traffic (times in simulated seconds).
struct SettingResult: Sendable {
    var setting: TuneSetting
    var requests: Int
    var upstreamCalls: Int
    var freshHits: Int
    var staleHits: Int
    var misses: Int
    var errors: Int
    /// The oldest answer served (its age by the Redis server clock).
    var worstStaleness: Double
    /// p99 of how long callers waited for another worker's (or another caller's) computation.
    var followerWaitP99: Double
    var followers: Int
    /// Redis memory the namespace used at the end (`used_memory` over the empty server).
    var memoryBytes: Int
    var keysInRedis: Int

    var freshHitRate: Double { requests == 0 ? 0 : Double(freshHits) / Double(requests) }
    var staleHitRate: Double { requests == 0 ? 0 : Double(staleHits) / Double(requests) }
}

enum TuneSweep {
    static let quiet = Logger(label: "tune", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Replays `workload` against the private Redis at `url` with `setting`, time compressed by `compression`.
    static func run(_ setting: TuneSetting, workload: TuneWorkload, url: String, compression: Double, workers: Int, seed: UInt64) async throws -> SettingResult {
        let admin = try RedisClient(url: url, poolSize: 1, logger: quiet)
        try await admin.send("FLUSHALL")
        let baseline = try await usedMemory(admin)
        let upstream = BenchUpstream(latency: workload.latency.compressed(by: compression), errorRate: workload.errorRate, valueBytes: 2_048, seed: seed)
        let policy = setting.policy(compression: compression)
        var caches: [(RedisClient, StampedeCache)] = []
        for _ in 0..<workers {
            let client = try RedisClient(configuration: try BenchConnections.configuration(url), logger: quiet)
            caches.append((client, try StampedeCache(redis: client, namespace: "tune", policy: policy, logger: quiet)))
        }
        let runs = caches.map { BackgroundRun($0.1.run) }
        let deadline = policy.effectiveMaxWait + policy.computeTimeout + .seconds(2)
        struct Outcome: Sendable {
            var source: CacheSource?
            var ageReal: Double
            var waitedReal: Double
            /// The caller waited for someone else's computation (another worker's, or coalesced in-process).
            var follower: Bool
        }
        let outcomes = Box<[Outcome]>([])
        let started = ContinuousClock.now
        // Open loop: each request starts at its (compressed) arrival time, however slow the others are.
        await withDiscardingTaskGroup { group in
            for (index, arrival) in workload.arrivals.enumerated() {
                try? await Task.sleep(until: started + .seconds(arrival.at / compression), clock: .continuous)
                let cache = caches[index % caches.count].1
                group.addTask {
                    let begin = ContinuousClock.now
                    let outcome: Outcome
                    do {
                        let result = try await withHardTimeout(deadline) { try await cache.value(for: arrival.key) { try await upstream.call(arrival.key) } }
                        let follower = result.source == .receivedFromOtherWorker || (result.coalesced && !result.source.isHit)
                        outcome = Outcome(source: result.source, ageReal: result.age.secondsDouble, waitedReal: (ContinuousClock.now - begin).secondsDouble, follower: follower)
                    } catch {
                        outcome = Outcome(source: nil, ageReal: 0, waitedReal: (ContinuousClock.now - begin).secondsDouble, follower: false)
                    }
                    outcomes.update { $0.append(outcome) }
                }
            }
        }
        for (_, cache) in caches { await cache.flushHits() }  // the last hot-key counts
        let memory = max(0, try await usedMemory(admin) - baseline)
        let keys = Int(try await admin.send("DBSIZE").int ?? 0)
        for (_, cache) in caches { await cache.close() }
        for run in runs { await run.finished() }
        for (client, _) in caches { await client.close() }
        await admin.close()

        let all = outcomes.value
        var fresh = 0, stale = 0, misses = 0, errors = 0
        var worst = 0.0
        var waits: [Double] = []
        for outcome in all {
            guard let source = outcome.source else { errors += 1; continue }
            worst = max(worst, outcome.ageReal * compression)
            if outcome.follower { waits.append(outcome.waitedReal * compression) }
            switch source {
            case .freshHit, .freshHitNear, .freshHitEarlyRefresh: fresh += 1
            case .staleHit, .staleAfterFailure: stale += 1
            default: misses += 1
            }
        }
        waits.sort()
        return SettingResult(
            setting: setting, requests: all.count, upstreamCalls: upstream.calls, freshHits: fresh, staleHits: stale, misses: misses,
            errors: errors, worstStaleness: worst, followerWaitP99: waits.isEmpty ? 0 : waits[min(waits.count - 1, Int(Double(waits.count) * 0.99))],
            followers: waits.count, memoryBytes: memory, keysInRedis: keys
        )
    }

    static func usedMemory(_ admin: RedisClient) async throws -> Int {
        let info = try await admin.send("INFO", "memory").string ?? ""
        return CompareBench.field("used_memory", in: info).flatMap { Int($0) } ?? 0
    }
}
