package import RedisServerProcess
package import LocalServices

/// A private redis-server that speaks TLS on a loopback port (`--port 0`: no plaintext TCP) and
/// plaintext on its unix socket (for readiness checks and admin commands).
package struct TLSRedis: Sendable {
    /// The server.
    package let server: RedisServerProcess
    /// The TLS port on 127.0.0.1.
    package let tlsPort: Int

    /// `rediss://127.0.0.1:<port>` with the given extra query (e.g. `tls_ca_file=…`).
    package func url(host: String = "127.0.0.1", _ query: [String: String] = [:]) -> String {
        let parameters = query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        return "rediss://\(host):\(tlsPort)" + (parameters.isEmpty ? "" : "?\(parameters)")
    }
}

/// Runs `body` with a TLS redis-server presenting `certificate` (default: the good server
/// certificate) whose `tls-auth-clients` is `authClients` (`no`, `yes` or `optional`).
package func withTLSRedis<T>(
    _ certificates: TestCertificates,
    certificate: String? = nil,
    authClients: String = "no",
    executable: String = "redis-server",
    _ body: (TLSRedis) async throws -> T
) async throws -> T {
    var lastError: (any Error)?
    for _ in 0..<3 {
        let port = try ServerSupport.pickFreePort()
        var options = RedisServerOptions()
        options.executable = executable
        options.extraArguments = [
            "--tls-port", "\(port)",
            "--tls-cert-file", certificate ?? certificates.serverCertificate,
            "--tls-key-file", certificates.serverKey,
            "--tls-ca-cert-file", certificates.caFile,
            "--tls-auth-clients", authClients,
        ]
        let server: RedisServerProcess
        do {
            server = try await RedisServerProcess.start(options, logger: TestRedis.logger)
        } catch {
            lastError = error  // most likely the port was taken meanwhile
            continue
        }
        do {
            let result = try await body(TLSRedis(server: server, tlsPort: port))
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
    throw lastError ?? LocalServicesError("could not start a TLS redis-server")
}
