import Foundation
import Logging
import RedisClient
import RedisServerProcess

/// The Redis a command runs against: `REDIS_URL` / `--redis-url`, or a private redis-server
/// started for this run (and stopped after it), announced on stderr.
struct RedisTarget {
    let url: String
    let server: RedisServerProcess?

    static func acquire(explicitURL: String?, tcp: Bool = true, tls: TLSOptions? = nil) async throws -> RedisTarget {
        let given = (explicitURL ?? ProcessInfo.processInfo.environment["REDIS_URL"]).flatMap { $0.isEmpty ? nil : $0 }
        // (An unparsed TLSOptions() cannot be read: "no flags" is nil here.)
        let resolved: String?
        if let tls { resolved = try tls.apply(to: given) } else { TLSOptions.warnIfInsecure(given); resolved = given }
        if let url = resolved {
            _ = try RedisConfiguration(url: url)  // a malformed URL fails here, clearly
            return RedisTarget(url: url, server: nil)
        }
        var options = RedisServerOptions()
        if tcp {
            options.unixSocket = false
            options.tcpPort = 0
        }
        let server = try await RedisServerProcess.start(options)
        Console.note("No REDIS_URL set: started a private redis-server (pid \(server.pid)) at \(server.url); it is stopped when this run ends.")
        return RedisTarget(url: server.url, server: server)
    }

    /// Runs `body` with the URL of `REDIS_URL`/`explicitURL` or of a private server, stopping the
    /// private server afterwards whether `body` succeeds or throws.
    static func with<T>(explicitURL: String?, tcp: Bool = true, tls: TLSOptions? = nil, _ body: (String) async throws -> T) async throws -> T {
        let target = try await acquire(explicitURL: explicitURL, tcp: tcp, tls: tls)
        do {
            let result = try await body(target.url)
            await target.release()
            return result
        } catch {
            await target.release()
            throw error
        }
    }

    func release() async {
        if let server {
            await server.stop()
            Console.note("Stopped the private redis-server.")
        }
    }
}

enum Console {
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
