import Foundation
import LocalServices
import Logging
import RedisClient
import RedisServerProcess
import SimulatedLLM
import Synchronization

extension ChaosRunner {
    static func baseBehaviour(_ seed: UInt64) -> SimulatedLLMBehaviour {
        SimulatedLLMBehaviour(latency: .logNormal(p50: .milliseconds(30), p99: .milliseconds(150)), seed: seed)
    }

    /// Injects `scenario`'s fault at its moments in the run and records the fault window.
    static func inject(
        _ scenario: ChaosScenario, admin: RedisClient, server: RedisServerProcess?, cluster: LocalCluster?, sentinel: LocalSentinel?, upstream: SimulatedLLMServer,
        started: ContinuousClock.Instant, duration: Duration, window: FaultWindow, logger: Logger,
        invalidate: @Sendable (Int) async -> Bool = { _ in false }
    ) async {
        func at(_ fraction: Double) async -> ContinuousClock.Instant {
            let moment = started + duration * fraction
            try? await Task.sleep(until: moment, clock: .continuous)
            return .now
        }
        func attempt(_ what: String, _ body: () async throws -> Void) async {
            do { try await body() } catch { logger.warning("fault injection step failed", metadata: ["step": "\(what)", "error": "\(error)"]) }
        }
        switch scenario {
        case .baseline, .workerKilled, .leaderFrozen:
            return  // (the multi-process scenarios inject their faults themselves)
        case .memoryPressure:
            window.set((started, started + duration))
        case .scriptFlush:
            let first = await at(0.3)
            await attempt("SCRIPT FLUSH") { _ = try await admin.sendToEveryPrimary(RedisCommand("SCRIPT", "FLUSH")) }
            _ = await at(0.6)
            await attempt("SCRIPT FLUSH") { _ = try await admin.sendToEveryPrimary(RedisCommand("SCRIPT", "FLUSH")) }
            window.set((first, .now))
        case .clientKill:
            let first = await at(0.3)
            for _ in 0..<2 {
                window.hit()
                await attempt("CLIENT KILL normal") { _ = try await admin.sendToEveryPrimary(RedisCommand("CLIENT", "KILL", "TYPE", "normal")) }
                await attempt("CLIENT KILL pubsub") { _ = try await admin.sendToEveryPrimary(RedisCommand("CLIENT", "KILL", "TYPE", "pubsub")) }
                _ = await at(0.6)
            }
            window.set((first, .now + .milliseconds(200)))
        case .redisRestart:
            let first = await at(0.4)
            window.hit()
            await attempt("restart") { try await server?.restart() }
            window.hit()
            window.set((first, .now + .milliseconds(200)))
        case .redisStall:
            let first = await at(0.3)
            window.hit()
            await attempt("CLIENT PAUSE") { _ = try await admin.sendToEveryPrimary(RedisCommand("CLIENT", "PAUSE", "1500", "ALL")) }
            window.set((first, first + .milliseconds(1_700)))
        case .upstreamErrors, .upstreamHangs:
            let first = await at(0.3)
            var faulty = baseBehaviour(UInt64(started.hashValue & 0xFFFF))
            if scenario == .upstreamErrors { faulty.errorRate = 0.5 } else { faulty.hangRate = 0.3 }
            upstream.setBehaviour(faulty)
            _ = await at(0.6)
            upstream.setBehaviour(baseBehaviour(UInt64(started.hashValue & 0xFFFF) &+ 1))
            window.set((first, .now + computeTimeout))
        case .clusterFailover:
            let first = await at(0.4)
            window.hit()
            if let cluster {
                await attempt("CLUSTER FAILOVER") { _ = try await cluster.failover(primaryPort: cluster.ports[0]) }
            }
            window.hit()
            window.set((first, .now + .milliseconds(200)))
        case .sentinelFailover:
            let first = await at(0.4)
            window.hit()
            if let sentinel {
                // Writes the old primary accepts until the sentinels demote it are lost when it
                // resyncs from the new one: every moment of the failover is a fault instant.
                let ticker = Task {
                    while !Task.isCancelled {
                        window.hit()
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                await attempt("SENTINEL FAILOVER") { _ = try await sentinel.failover() }
                ticker.cancel()
            }
            window.hit()
            window.set((first, .now + .milliseconds(200)))
        case .clusterReshard:
            let first = await at(0.3)
            window.hit()
            if let cluster {
                await attempt("migrate slots") {
                    let moved = try await cluster.migrateSlots(ofKeysMatching: "stampede:*", from: cluster.ports[0], to: cluster.ports[1], maxSlots: 32)
                    logger.info("migrated slots", metadata: ["slots": "\(moved.count)"])
                }
            }
            window.set((first, .now + .milliseconds(200)))
        case .lostNotices:
            let first = await at(0.3)
            let stop = started + duration * 0.6
            while ContinuousClock.now < stop {
                await attempt("CLIENT KILL pubsub") { _ = try await admin.sendToEveryPrimary(RedisCommand("CLIENT", "KILL", "TYPE", "pubsub")) }
                try? await Task.sleep(for: .milliseconds(150))
            }
            window.set((first, .now + .milliseconds(300)))
        case .lostInvalidations:
            let first = await at(0.3)
            let stop = started + duration * 0.6
            var generator = SplitMix64(seed: UInt64(truncatingIfNeeded: first.hashValue))
            var lastKill = ContinuousClock.now - .seconds(1)
            while ContinuousClock.now < stop {
                if ContinuousClock.now - lastKill >= .milliseconds(150) {
                    // Kills the near-caches' invalidation listeners (and the notice subscribers).
                    await attempt("CLIENT KILL pubsub") { _ = try await admin.sendToEveryPrimary(RedisCommand("CLIENT", "KILL", "TYPE", "pubsub")) }
                    lastKill = .now
                }
                // One of the ten most popular prompts: the ones the near-caches hold.
                let key = Int.random(in: 0..<10, using: &generator)
                let before = ContinuousClock.now
                let deleted = await invalidate(key)
                window.invalidated(key: key, before: before, after: .now, deleted: deleted)
                try? await Task.sleep(for: .milliseconds(40))
            }
            window.set((first, .now + .milliseconds(300)))
        }
    }
}

/// One invalidation made by the `lost-invalidations` scenario: `key`'s entry was deleted between
/// `before` and `after` (when `deleted`; else it was not stored at that moment).
struct InvalidationRecord: Sendable {
    var key: Int
    var before: ContinuousClock.Instant
    var after: ContinuousClock.Instant
    var deleted: Bool
}

/// When the fault was active (start, end), set by the injector.
final class FaultWindow: Sendable {
    private let value = Mutex<(start: ContinuousClock.Instant, end: ContinuousClock.Instant)?>(nil)
    private let instants = Mutex<[ContinuousClock.Instant]>([])
    private let invalidationRecords = Mutex<[InvalidationRecord]>([])
    /// Records an invalidation made by the scenario.
    func invalidated(key: Int, before: ContinuousClock.Instant, after: ContinuousClock.Instant, deleted: Bool) {
        invalidationRecords.withLock { $0.append(InvalidationRecord(key: key, before: before, after: after, deleted: deleted)) }
    }
    var invalidations: [InvalidationRecord] { invalidationRecords.withLock { $0 } }
    /// Records a fault's window; with several faults, the window covers them all.
    func set(_ window: (start: ContinuousClock.Instant, end: ContinuousClock.Instant)) {
        value.withLock { current in
            if let existing = current {
                current = (min(existing.start, window.start), max(existing.end, window.end))
            } else {
                current = window
            }
        }
    }
    var current: (start: ContinuousClock.Instant, end: ContinuousClock.Instant)? { value.withLock { $0 } }
    /// Marks the moment a connection-level fault hit (kill, restart, pause).
    func hit(_ instant: ContinuousClock.Instant = .now) { instants.withLock { $0.append(instant) } }
    var hits: [ContinuousClock.Instant] { instants.withLock { $0 } }
}
