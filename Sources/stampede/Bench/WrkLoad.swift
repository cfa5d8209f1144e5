import ArgumentParser
import Foundation
import Subprocess
import SystemPackage

/// Drives an HTTP route with `wrk` (Debian's `wrk` package: C, one thread, keep-alive
/// connections) and reads its report: the load generator `stampede bench proxy` uses for its
/// throughput rounds when `wrk` is installed, so the proxy's rate is not capped by a Swift client
/// sharing its process and the machine's two cores.
enum WrkLoad {
    /// One `wrk` run's figures.
    struct Report: Sendable {
        var requestsPerSecond: Double
        var requests: Int
        var p50Milliseconds: Double
        var p99Milliseconds: Double
    }

    /// A request `wrk` sends: method, path, headers and body.
    struct Request: Sendable {
        var method = "GET"
        var headers: [(String, String)] = []
        var body: String?
    }

    /// `wrk` on `PATH`, or `nil`.
    static var executable: String? { RedisBenchmarkTool.findOnPath("wrk") }

    /// Sends `requests` round-robin (the same list, in order, over and over) to `url` from
    /// `connections` connections for `seconds`.
    /// - Throws: `ValidationError` when `wrk` is missing, fails, reports a non-2xx answer or
    ///   socket errors, or prints a report this cannot read.
    static func run(url: String, requests: [Request], connections: Int, seconds: Int) async throws -> Report {
        guard let executable else { throw ValidationError("wrk not found on PATH (apt-get install wrk)") }
        guard !requests.isEmpty else { throw ValidationError("wrk needs at least one request") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stampede-wrk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("requests.lua")
        try Data(luaScript(requests, path: URL(string: url)?.path ?? "/").utf8).write(to: script)
        let result = try await Subprocess.run(
            .path(FilePath(executable)),
            arguments: ["-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script.path, url],
            input: .none, output: .string(limit: 1 << 20), error: .string(limit: 1 << 16)
        )
        let output = result.standardOutput
        guard result.terminationStatus.isSuccess else {
            throw ValidationError("wrk ended with \(result.terminationStatus): \(result.standardError.prefix(500))")
        }
        return try parse(output)
    }

    /// A Lua script that builds every request once and hands them out in turn.
    static func luaScript(_ requests: [Request], path: String) -> String {
        func quoted(_ text: String) -> String {
            var out = "\""
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += "\\\""
                case UInt8(ascii: "\\"): out += "\\\\"
                case 0x20...0x7E: out += String(UnicodeScalar(byte))
                default: out += String(format: "\\%03d", Int(byte))
                }
            }
            return out + "\""
        }
        var lines = ["local built = {}", "local next_index = 0", "function init(args)"]
        for request in requests {
            let headers = request.headers.map { "[\(quoted($0.0))] = \(quoted($0.1))" }.joined(separator: ", ")
            lines.append("  built[#built + 1] = wrk.format(\(quoted(request.method)), \(quoted(path)), {\(headers)}, \(request.body.map(quoted) ?? "nil"))")
        }
        lines += ["end", "function request()", "  next_index = next_index % #built + 1", "  return built[next_index]", "end"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads `wrk --latency`'s report.
    /// - Throws: `ValidationError` for non-2xx answers, socket errors, or a report without the
    ///   request rate or the 50th and 99th percentiles.
    static func parse(_ output: String) throws -> Report {
        var rate: Double?
        var requests: Int?
        var p50: Double?
        var p99: Double?
        for line in output.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Non-2xx" { throw ValidationError("wrk received non-2xx answers: \(line.trimmingCharacters(in: .whitespaces))") }
            if first == "Socket", line.contains("errors") {
                throw ValidationError("wrk saw socket errors: \(line.trimmingCharacters(in: .whitespaces))")
            }
            if first == "Requests/sec:", fields.count >= 2 { rate = Double(fields[1]) }
            if fields.count >= 3, fields[1] == "requests", fields[2] == "in" { requests = Int(first) }
            if first == "50%", fields.count >= 2 { p50 = milliseconds(fields[1]) }
            if first == "99%", fields.count >= 2 { p99 = milliseconds(fields[1]) }
        }
        guard let rate, rate.isFinite, rate >= 0, let requests, let p50, let p99 else {
            throw ValidationError("could not read wrk's report: \(output.prefix(500))")
        }
        return Report(requestsPerSecond: rate, requests: requests, p50Milliseconds: p50, p99Milliseconds: p99)
    }

    /// `812.00us`, `4.70ms` or `1.02s` in milliseconds.
    static func milliseconds<S: StringProtocol>(_ text: S) -> Double? {
        for (suffix, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1_000.0)] where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value.isFinite, value >= 0 else { return nil }
            return value * scale
        }
        return nil
    }
}
