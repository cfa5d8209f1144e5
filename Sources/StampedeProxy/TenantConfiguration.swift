/// One virtual API key: who holds it (a tenant with its own cache namespace), which models it may
/// ask for, and which upstream credential its requests use. The caller's key never reaches the
/// upstream.
public struct TenantConfiguration: Sendable, Hashable, Codable {
    /// The tenant's name (logs and metrics; never a secret).
    public var name: String
    /// The cache namespace: tenants never share entries (1-48 characters of `A-Z a-z 0-9 - _`; a
    /// `.` is reserved for the per-request sub-namespaces a caller may pick inside its own).
    public var namespace: String
    /// The SHA-256 of the virtual key, as 64 hex characters (`stampede serve hash-key`).
    public var keySHA256: String
    /// The upstream profile its requests go to.
    public var upstream: String
    /// The models it may ask for (`nil` or empty: any).
    public var models: [String]?

    enum CodingKeys: String, CodingKey {
        case name, namespace, upstream, models
        case keySHA256 = "key_sha256"
    }

    /// Creates a tenant.
    public init(name: String, namespace: String, keySHA256: String, upstream: String, models: [String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.keySHA256 = keySHA256
        self.upstream = upstream
        self.models = models
    }

    func validate() throws(ProxyConfigurationError) {
        guard !name.isEmpty, name.count <= 64 else { throw ProxyConfigurationError("a tenant's 'name' must be 1-64 characters") }
        guard !namespace.isEmpty, namespace.utf8.count <= 48,
              namespace.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw ProxyConfigurationError("tenant '\(name)': 'namespace' must be 1-48 characters of A-Z a-z 0-9 - _ (no '.'), got '\(namespace)'")
        }
        guard keySHA256.count == 64, keySHA256.allSatisfy(\.isHexDigit) else {
            throw ProxyConfigurationError("tenant '\(name)': 'key_sha256' must be 64 hex characters (stampede serve hash-key prints it)")
        }
    }
}
