/// Pass-through mode: a caller whose bearer key is not one of the proxy's virtual keys is served
/// with its own key sent to the upstream, in a namespace of its own: `pt-` and the first 128 bits
/// of HMAC-SHA256(secret, key) in hex. Callers with the same upstream key share answers; callers
/// with different keys never do, and neither Redis nor any header holds anything from which the
/// key could be recovered without the secret.
///
/// ```json
/// "pass_through": {"upstream": "openai", "hmac_secret_env": "STAMPEDE_PASS_THROUGH_SECRET", "models": ["gpt-4o-mini"]}
/// ```
///
/// An invalid key gets the upstream's own 401 (nothing is cached for it). A revoked key still
/// reads the answers cached under it until they expire (the policy's `freshFor + staleFor`).
public struct PassThroughConfiguration: Sendable, Hashable, Codable {
    /// The upstream profile the callers' keys are sent to (its own key is not used).
    public var upstream: String
    /// The environment variable holding the HMAC secret (at least 32 characters).
    public var hmacSecretEnvironment: String
    /// The models pass-through callers may ask for (absent or empty: any).
    public var models: [String]?

    enum CodingKeys: String, CodingKey {
        case upstream, models
        case hmacSecretEnvironment = "hmac_secret_env"
    }

    /// Creates a pass-through configuration.
    public init(upstream: String, hmacSecretEnvironment: String, models: [String]? = nil) {
        self.upstream = upstream
        self.hmacSecretEnvironment = hmacSecretEnvironment
        self.models = models
    }

    /// The prefix of every pass-through namespace (`pt-`).
    public static let namespacePrefix = "pt-"

    /// The shortest secret accepted.
    public static let minimumSecretLength = 32

    func validate(upstreams: Set<String>) throws(ProxyConfigurationError) {
        guard upstreams.contains(upstream) else {
            throw ProxyConfigurationError("pass_through names upstream '\(upstream)', which is not in 'upstreams'")
        }
        guard !hmacSecretEnvironment.isEmpty, hmacSecretEnvironment.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw ProxyConfigurationError("pass_through.hmac_secret_env must be an environment variable name, got '\(hmacSecretEnvironment)'")
        }
    }
}
