import ArgumentParser
import ChaosKit
import Foundation
import LocalServices
import Logging
import RedisClient
import RedisServerProcess
import StampedeCache

/// `stampede bench cluster`: fresh-hit throughput and latency on a 3-primary loopback Redis
/// Cluster against one redis-server, in the same run, alternating round by round.
struct ClusterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Benchmark the cache on a 3-primary Redis Cluster vs one redis-server (both private, same run): 64-way fresh-hit throughput and single-caller hit latency."
    )

    @Option(help: "Distinct keys (spread over every slot).")
    var keys: Int = 1_000
    @Option(help: "Fresh hits per 64-way throughput round.")
    var hits: Int = 200_000
    @Option(help: "Single-caller hits per latency round.")
    var requests: Int = 5_000
    @Option(help: "Rounds; single server and cluster alternate.")
    var rounds: Int = 3
    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        _ = try NumericInput.integer(keys, "--keys", in: 1...1_000_000)
        _ = try NumericInput.integer(hits, "--hits", in: 64...1_000_000_000)
        _ = try NumericInput.integer(requests, "--requests", in: 1...100_000_000)
        _ = try NumericInput.integer(rounds, "--rounds", in: 1...1_000)
    }

    private static let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    struct Side {
        var latency = LatencySamples()
        var opsPerRound: [Double] = []
        var ops: Double { opsPerRound.isEmpty ? 0 : opsPerRound.reduce(0, +) / Double(opsPerRound.count) }
    }

    func run() async throws {
        var options = RedisServerOptions()
        options.unixSocket = false
        options.tcpPort = 0
        let single = try await RedisServerProcess.start(options)
        let cluster: LocalCluster
        do {
            cluster = try await LocalCluster.start(primaries: 3, replicasPerPrimary: 0)
        } catch {
            await single.stop()
            throw error
        }
        Console.note("Started a private redis-server and a 3-primary cluster; both are stopped when this run ends.")
        do {
            let (one, three) = try await measure(singleURL: single.url, clusterURL: cluster.url)
            await single.stop()
            await cluster.stop()
            report(one, three)
        } catch {
            await single.stop()
            await cluster.stop()
            throw error
        }
    }

    private func measure(singleURL: String, clusterURL: String) async throws -> (Side, Side) {
        let policy = CachePolicy(freshFor: .seconds(3600), staleFor: .seconds(3600), computeTimeout: .seconds(10), lockTTL: .seconds(15), ttlJitter: 0)
        func open(_ url: String) async throws -> (RedisClient, StampedeCache, BackgroundRun) {
            var configuration = try RedisConfiguration(url: url)
            configuration.poolSize = 2
            let client = try RedisClient(configuration: configuration, logger: Self.quiet)
            let cache = try StampedeCache(redis: client, namespace: "benchcluster", policy: policy, logger: Self.quiet)
            await cache.start()
            for index in 0..<keys { _ = try await cache.value(for: "k\(index)") { Array(repeating: UInt8(index & 0xFF), count: 512) } }
            return (client, cache, BackgroundRun(cache.run))
        }
        let sides = [try await open(singleURL), try await open(clusterURL)]
        var results = [Side(), Side()]
        let keyCount = keys
        for _ in 0..<rounds {
            for (index, side) in sides.enumerated() {
                let cache = side.1
                // Single caller: latency.
                let samples = try await withTaskExecutorPreference(side.0.taskExecutor) {
                    var samples = LatencySamples()
                    let clock = ContinuousClock()
                    for request in 0..<requests {
                        let start = clock.now
                        let result = try await cache.value(for: "k\(request % keyCount)") { [] }
                        samples.append((clock.now - start).nanosecondsClamped)
                        guard result.source == .freshHit else { throw ValidationError("expected a fresh hit, got \(result.source)") }
                    }
                    return samples
                }
                results[index].latency.append(contentsOf: samples)
                // 64 callers: throughput.
                let perTask = hits / 64
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<64 {
                        group.addTask(executorPreference: side.0.taskExecutor) {
                            for request in 0..<perTask {
                                let result = try await cache.value(for: "k\((task * 7919 + request) % keyCount)") { [] }
                                guard result.source == .freshHit else { throw ValidationError("expected a fresh hit, got \(result.source)") }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let seconds = (ContinuousClock.now - started).secondsDouble
                results[index].opsPerRound.append(Double(perTask * 64) / seconds)
            }
        }
        for side in sides {
            await side.1.close()
            await side.2.finished()
            await side.0.close()
        }
        return (results[0], results[1])
    }

    private func report(_ one: Side, _ three: Side) {
        let throughputRatio = three.ops / one.ops
        let latencyRatio = three.latency.percentileMicros(50) / one.latency.percentileMicros(50)
        if json {
            let object: [String: Any] = [
                "single_hit_ops": one.ops, "cluster_hit_ops": three.ops, "cluster_hit_ops_ratio_vs_single": throughputRatio,
                "single_hit_p50_us": one.latency.percentileMicros(50), "cluster_hit_p50_us": three.latency.percentileMicros(50),
                "cluster_hit_p50_ratio_vs_single": latencyRatio, "keys": keys, "rounds": rounds,
            ]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        print("""
            Fresh hits, \(keys) keys of 512 bytes, one StampedeCache per deployment (poolSize 2), \(rounds) alternating rounds
                                      64-way hits/s    p50 µs    p99 µs
            one redis-server          \(f(one.ops).padding(toLength: 15, withPad: " ", startingAt: 0))  \(f(one.latency.percentileMicros(50)).padding(toLength: 8, withPad: " ", startingAt: 0))  \(f(one.latency.percentileMicros(99)))
            3-primary cluster         \(f(three.ops).padding(toLength: 15, withPad: " ", startingAt: 0))  \(f(three.latency.percentileMicros(50)).padding(toLength: 8, withPad: " ", startingAt: 0))  \(f(three.latency.percentileMicros(99)))
            cluster / single: throughput \(String(format: "%.2f", throughputRatio))x, p50 latency \(String(format: "%.2f", latencyRatio))x
            (2 cores run the client and all four servers: the cluster cannot add CPU here, so the ratio shows the
            routing cost; on separate machines each primary brings its own core.)
            """)
    }
}
