import ArgumentParser
import Foundation
import RedisClient

/// `--tls-*` flags: TLS settings for a `rediss://` Redis URL. Each may instead come from its
/// `REDIS_TLS_*` environment variable (read by the client when the URL leaves it out) or from the
/// URL's own query (`tls_ca_file=…`).
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-ca-file"), help: "PEM file of the CA that signed the Redis server's certificate (rediss:// only). [env: REDIS_TLS_CA_FILE] (default: the system's trust roots)")
    var caFile: String?
    @Option(name: .customLong("tls-cert-file"), help: "PEM client certificate, for servers with tls-auth-clients yes. [env: REDIS_TLS_CERT_FILE]")
    var certificateFile: String?
    @Option(name: .customLong("tls-key-file"), help: "PEM private key of --tls-cert-file. [env: REDIS_TLS_KEY_FILE]")
    var keyFile: String?
    @Option(name: .customLong("tls-server-name"), help: "The name the server's certificate must carry (and SNI). [env: REDIS_TLS_SERVER_NAME] (default: the URL's host)")
    var serverName: String?
    @Flag(name: .customLong("tls-insecure-skip-verify"), help: "INSECURE: accept any server certificate (self-signed test setups only). [env: REDIS_TLS_INSECURE_SKIP_VERIFY]")
    var insecureSkipVerify = false

    /// Whether any flag was given.
    var isEmpty: Bool { caFile == nil && certificateFile == nil && keyFile == nil && serverName == nil && !insecureSkipVerify }

    /// `url` with the given flags added to its query (file paths and a host name are not secrets;
    /// worker processes inherit them with the URL). Flags with a non-TLS URL are refused.
    func apply(to url: String?) throws -> String? {
        guard !isEmpty else {
            Self.warnIfInsecure(url)
            return url
        }
        guard let url, url.lowercased().hasPrefix("rediss://") else {
            throw ValidationError("--tls-* flags need a rediss:// Redis URL (--redis-url or REDIS_URL)")
        }
        var parameters: [String] = []
        func add(_ name: String, _ value: String?) {
            guard let value else { return }
            let encoded = value.unicodeScalars.map { scalar -> String in
                let c = Character(scalar)
                if c.isASCII && (c.isLetter || c.isNumber || "-._~/".contains(c)) { return String(c) }
                return String(scalar.utf8.map { String(format: "%%%02X", $0) }.joined())
            }.joined()
            parameters.append("\(name)=\(encoded)")
        }
        add("tls_ca_file", caFile)
        add("tls_cert_file", certificateFile)
        add("tls_key_file", keyFile)
        add("tls_server_name", serverName)
        if insecureSkipVerify { parameters.append("tls_insecure_skip_verify=true") }
        let result = url + (url.contains("?") ? "&" : "?") + parameters.joined(separator: "&")
        _ = try RedisConfiguration(url: result)  // a bad combination fails here, clearly
        Self.warnIfInsecure(result)
        return result
    }

    /// Says loudly, on stderr, when `url` (with the REDIS_TLS_* environment) turns certificate checks off.
    static func warnIfInsecure(_ url: String?) {
        guard let url, let configuration = try? RedisConfiguration(url: url), configuration.tls?.verification == .insecureSkipVerification else { return }
        Console.note("WARNING: TLS certificate verification is OFF (--tls-insecure-skip-verify / tls_insecure_skip_verify / REDIS_TLS_INSECURE_SKIP_VERIFY): anyone on the network path can read and change this Redis traffic. Use it for self-signed test setups only.")
    }
}
