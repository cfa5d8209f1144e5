import ArgumentParser
import ChaosKit
import Foundation
import LocalServices
import RedisClient
import RedisServerProcess

/// `stampede bench client --tls`: the cost of TLS, measured on one private redis-server that
/// listens on a plaintext port and a TLS port at once (certificates made with `openssl` for the
/// run), alternating the two round by round so drift hits both alike.
struct TLSClientBench {
    var requests: Int
    var rounds: Int
    var concurrentRequests: Int

    struct Report {
        var requests: Int
        var plain: LatencySamples
        var tls: LatencySamples
        var plainOps: Double
        var tlsOps: Double

        var latencyRatio: Double { tls.percentileMicros(50) / plain.percentileMicros(50) }
        var throughputRatio: Double { tlsOps / plainOps }

        var table: String {
            func format(_ value: Double) -> String { String(format: "%.1f", value) }
            return """
                TLS vs plaintext, same redis-server, same run (\(requests) single-caller GETs each, 64-way throughput)
                                              p50 µs    p99 µs      64-way ops/s
                plaintext (redis://)        \(format(plain.percentileMicros(50)).leftPadded(8))  \(format(plain.percentileMicros(99)).leftPadded(8))  \(format(plainOps).leftPadded(16))
                TLS (rediss://)             \(format(tls.percentileMicros(50)).leftPadded(8))  \(format(tls.percentileMicros(99)).leftPadded(8))  \(format(tlsOps).leftPadded(16))
                TLS / plaintext: p50 latency \(String(format: "%.2f", latencyRatio))x, 64-way throughput \(String(format: "%.2f", throughputRatio))x
                """
        }

        var json: String {
            let object: [String: Any] = [
                "requests": requests,
                "plain_p50_us": plain.percentileMicros(50), "plain_p99_us": plain.percentileMicros(99),
                "tls_p50_us": tls.percentileMicros(50), "tls_p99_us": tls.percentileMicros(99),
                "plain_concurrent64_ops": plainOps, "tls_concurrent64_ops": tlsOps,
                "tls_p50_ratio_vs_plain": latencyRatio, "tls_concurrent64_ops_ratio_vs_plain": throughputRatio,
            ]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    func run() async throws -> Report {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let tlsPort = try ServerSupport.pickFreePort()
        var options = RedisServerOptions()
        options.unixSocket = false
        options.tcpPort = 0
        options.extraArguments = [
            "--tls-port", "\(tlsPort)", "--tls-cert-file", certificates.serverCertificate,
            "--tls-key-file", certificates.serverKey, "--tls-ca-cert-file", certificates.caFile, "--tls-auth-clients", "no",
        ]
        let server = try await RedisServerProcess.start(options)
        Console.note("Started a private redis-server (pid \(server.pid)) with a plaintext port and TLS port \(tlsPort); it is stopped when this run ends.")
        do {
            let report = try await measure(plainURL: server.url, tlsURL: "rediss://127.0.0.1:\(tlsPort)?tls_ca_file=\(certificates.caFile)")
            await server.stop()
            return report
        } catch {
            await server.stop()
            throw error
        }
    }

    private func client(_ url: String) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url, environment: [:])
        configuration.poolSize = 1
        return try RedisClient(configuration: configuration)
    }

    private func measure(plainURL: String, tlsURL: String) async throws -> Report {
        let key = "stampede:bench:client"
        let plain = try client(plainURL)
        let tls = try client(tlsURL)
        try await plain.set(key, to: "abc")
        _ = try await ClientBench.measureGETs(client: plain, key: key, count: 2_000, onEventLoop: true)
        _ = try await ClientBench.measureGETs(client: tls, key: key, count: 2_000, onEventLoop: true)
        var plainSamples = LatencySamples()
        var tlsSamples = LatencySamples()
        for _ in 0..<rounds {
            plainSamples.append(contentsOf: try await ClientBench.measureGETs(client: plain, key: key, count: requests, onEventLoop: true))
            tlsSamples.append(contentsOf: try await ClientBench.measureGETs(client: tls, key: key, count: requests, onEventLoop: true))
        }
        let plainOps = try await ClientBench.concurrentGETs(client: plain, key: key, tasks: 64, total: concurrentRequests, onEventLoop: true)
        let tlsOps = try await ClientBench.concurrentGETs(client: tls, key: key, tasks: 64, total: concurrentRequests, onEventLoop: true)
        await plain.close()
        await tls.close()
        return Report(requests: requests * rounds, plain: plainSamples, tls: tlsSamples, plainOps: plainOps, tlsOps: tlsOps)
    }
}
