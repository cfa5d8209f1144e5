import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns what NIOSSL and BoringSSL report into a ``RedisError/Code/tls`` that says what went wrong
/// in the user's terms and what to change.
enum TLSFailure {
    /// Whether `error` comes from TLS (as opposed to the socket or Redis).
    static func isTLSError(_ error: any Error) -> Bool {
        error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError
    }

    /// The error for a failed TLS handshake (or a TLS alert right after it) with `endpoint`.
    ///
    /// `certificate` is the server's certificate as a diagnosis connection without verification
    /// saw it, when verification failed and it could be fetched: it tells an expired certificate
    /// from an untrusted one.
    static func error(_ error: any Error, endpoint: String, tls: RedisTLSConfiguration, serverName: String?, certificate: NIOSSLCertificate? = nil) -> RedisError {
        let text = "\(error)"
        let trust = tls.caFile.map { "the CA file \($0) (REDIS_TLS_CA_FILE)" } ?? "the system's trust roots (set REDIS_TLS_CA_FILE for a private CA)"
        func tlsError(_ message: String) -> RedisError { RedisError(code: .tls, message: "TLS with \(endpoint): \(message)") }

        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname || extra == .serverHostnameImpossibleToMatch {
            let expected = serverName ?? "the IP address \(endpoint)"
            return tlsError("the server's certificate does not name \(expected). Connect with a host name the certificate carries, or set REDIS_TLS_SERVER_NAME (tls_server_name) to one")
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            if let certificate {
                let now = time(nil)
                if certificate.notValidAfter < now {
                    return tlsError("the server's certificate expired on \(formatted(certificate.notValidAfter)); the server must be given a renewed certificate")
                }
                if certificate.notValidBefore > now {
                    return tlsError("the server's certificate is not valid until \(formatted(certificate.notValidBefore)); check the clocks of both machines")
                }
            }
            return tlsError("the server's certificate is not signed by a CA in \(trust), so it cannot be trusted. Point REDIS_TLS_CA_FILE at the CA that signed it")
        }
        if text.contains("CERTIFICATE_REQUIRED") || text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || (tls.certificateFile == nil && text.contains("HANDSHAKE_FAILURE")) {
            return tlsError("the server requires a client certificate (tls-auth-clients yes) and none was given. Set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE (tls_cert_file, tls_key_file)")
        }
        if text.contains("UNKNOWN_CA") || text.contains("BAD_CERTIFICATE") || text.contains("CERTIFICATE_UNKNOWN") || text.contains("CERTIFICATE_EXPIRED") {
            return tlsError("the server refused this client's certificate (\(tls.certificateFile ?? "none")): it must be signed by a CA in the server's tls-ca-cert-file and be valid now")
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("RECORD_TOO_LARGE") || text.contains("PACKET_LENGTH_TOO_LONG") {
            return tlsError("the server does not speak TLS on this port. Use redis:// for a plaintext port, or the port of the server's tls-port")
        }
        if let ssl = error as? NIOSSLError, ssl == .uncleanShutdown {
            return tlsError("the server closed the connection during the TLS handshake; it may not speak TLS on this port, or refused this client (check the server's log)")
        }
        return tlsError("the handshake failed: \(text)")
    }

    /// A `time_t` as an ISO-8601 UTC date.
    private static func formatted(_ seconds: time_t) -> String {
        var value = seconds
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ number: Int32) -> String { number < 10 ? "0\(number)" : "\(number)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
