/// How to speak TLS to Redis (managed Redis — ElastiCache, Redis Cloud, Upstash, Azure — requires it).
///
/// Set ``RedisConfiguration/tls`` to one of these, or use a `rediss://` URL, whose query may carry
/// every field (`tls_ca_file`, `tls_cert_file`, `tls_key_file`, `tls_server_name`,
/// `tls_insecure_skip_verify=true`); a field the URL leaves out is read from the environment
/// (``environmentVariables``), as libpq reads `PGSSLROOTCERT`.
///
/// ```swift
/// var configuration = try RedisConfiguration(url: "rediss://cache.example.com:6380")
/// configuration.tls?.caFile = "/etc/ssl/redis-ca.pem"          // a private CA
/// configuration.tls?.certificateFile = "/etc/ssl/worker.pem"   // mutual TLS
/// configuration.tls?.privateKeyFile = "/etc/ssl/worker.key"
/// ```
///
/// The server's certificate is verified against ``caFile`` (or the system's trust roots) and its
/// name (``serverName``, else the host of the endpoint; an IP address is matched against the
/// certificate's IP SANs). ``Verification/insecureSkipVerification`` turns both checks off for
/// self-signed test setups and makes every connection log a warning.
public struct RedisTLSConfiguration: Sendable, Hashable {
    /// How the server's certificate is checked.
    public enum Verification: Sendable, Hashable, CustomStringConvertible {
        /// The certificate chain must lead to a trusted CA, be valid now, and name the server. The default.
        case full
        /// **Insecure**: any certificate is accepted, so anyone on the path can read and change the
        /// traffic. For self-signed test setups only; every connection logs a warning.
        case insecureSkipVerification

        /// `full` or `insecure-skip-verification`.
        public var description: String {
            switch self {
            case .full: return "full"
            case .insecureSkipVerification: return "insecure-skip-verification"
            }
        }
    }

    /// A PEM file of the CA certificates that may sign the server's certificate; `nil` uses the
    /// system's trust roots (right for managed Redis with a public CA).
    public var caFile: String?
    /// A PEM file with this client's certificate (and any intermediates), for mutual TLS
    /// (`tls-auth-clients yes`). Needs ``privateKeyFile``.
    public var certificateFile: String?
    /// The PEM private key of ``certificateFile``.
    public var privateKeyFile: String?
    /// The name the server's certificate must carry, also sent as SNI; `nil` uses the endpoint's host.
    /// Set it when connecting by IP address or through a tunnel to a server whose certificate names
    /// its DNS name.
    public var serverName: String?
    /// How the server's certificate is checked.
    public var verification: Verification

    /// A TLS configuration; the defaults verify the server against the system's trust roots.
    public init(
        caFile: String? = nil,
        certificateFile: String? = nil,
        privateKeyFile: String? = nil,
        serverName: String? = nil,
        verification: Verification = .full
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.serverName = serverName
        self.verification = verification
    }

    /// The environment variables that fill fields a `rediss://` URL leaves out:
    /// `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`, `REDIS_TLS_SERVER_NAME`
    /// and `REDIS_TLS_INSECURE_SKIP_VERIFY` (`1`/`true`/`yes`).
    public static let environmentVariables = [
        "REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE", "REDIS_TLS_SERVER_NAME", "REDIS_TLS_INSECURE_SKIP_VERIFY",
    ]

    /// The URL query parameter of each field, in the order of ``environmentVariables``.
    static let queryParameters = ["tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_insecure_skip_verify"]

    /// Sets the field named by a URL query parameter or environment variable (`index` into
    /// ``queryParameters``); throws a message for a value that cannot be meant.
    mutating func set(fieldAt index: Int, to value: String) throws(RedisError) {
        switch index {
        case 0: caFile = value
        case 1: certificateFile = value
        case 2: privateKeyFile = value
        case 3: serverName = value
        default:
            switch value.lowercased() {
            case "1", "true", "yes": verification = .insecureSkipVerification
            case "0", "false", "no", "": verification = .full
            default:
                throw RedisError(code: .configuration, message: "\(Self.queryParameters[4]) must be true or false, not '\(value)'")
            }
        }
    }

    /// Checks that the fields fit together; throws ``RedisError/Code/configuration`` saying what to set.
    public func validate() throws(RedisError) {
        func bad(_ message: String) -> RedisError { RedisError(code: .configuration, message: message) }
        for (name, path) in [("caFile", caFile), ("certificateFile", certificateFile), ("privateKeyFile", privateKeyFile)] {
            if let path, path.isEmpty { throw bad("TLS \(name) is empty; omit it or give a PEM file path") }
        }
        if (certificateFile == nil) != (privateKeyFile == nil) {
            throw bad("mutual TLS needs both a client certificate and its private key (REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE); only one was given")
        }
        if let serverName, serverName.isEmpty || serverName.contains(where: { $0 == " " || $0 == "/" }) {
            throw bad("TLS server name '\(serverName)' is not a host name")
        }
    }
}
