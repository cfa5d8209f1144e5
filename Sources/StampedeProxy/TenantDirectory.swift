/// The virtual API keys the proxy accepts, by SHA-256 (the configuration holds hashes only).
public struct TenantDirectory: Sendable {
    private let byDigest: [VirtualKeyDigest: Tenant]
    private let passThrough: PassThroughKeys?

    /// A directory of the configured tenants, and, with `passThrough` and its HMAC `secret`, of
    /// pass-through callers (see ``PassThroughConfiguration``).
    /// - Throws: ``ProxyConfigurationError`` when pass-through is configured without a usable secret.
    public init(_ tenants: [TenantConfiguration], passThrough: PassThroughConfiguration? = nil, secret: String? = nil) throws(ProxyConfigurationError) {
        if let passThrough {
            guard let secret else {
                throw ProxyConfigurationError("pass_through needs its HMAC secret: set \(passThrough.hmacSecretEnvironment)")
            }
            self.passThrough = try PassThroughKeys(passThrough, secret: secret)
        } else {
            self.passThrough = nil
        }
        var byDigest: [VirtualKeyDigest: Tenant] = [:]
        // A hash that is not 64 hex characters matches no key (ProxyConfiguration.validate refuses it).
        for tenant in tenants {
            guard let digest = VirtualKeyDigest(hex: tenant.keySHA256) else { continue }
            byDigest[digest] = Tenant(
                name: tenant.name, namespace: tenant.namespace, upstream: tenant.upstream, models: Set(tenant.models ?? [])
            )
        }
        self.byDigest = byDigest
    }

    /// The tenant whose virtual key is in `authorization` (`Bearer <key>`).
    /// - Throws: ``ProxyError`` 401 when the header is missing or malformed or the key is unknown
    ///   (the message never repeats the key).
    public func authenticate(authorization: String?) throws(ProxyError) -> Tenant {
        guard let authorization, !authorization.isEmpty else {
            throw ProxyError.unauthorized("no API key: send 'Authorization: Bearer <your virtual key>'")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw ProxyError.unauthorized("the Authorization header must be 'Bearer <your virtual key>'")
        }
        let key = String(parts[1].drop(while: { $0 == " " }))
        if let tenant = byDigest[VirtualKeyDigest(of: key)] { return tenant }
        if let passThrough, !key.isEmpty { return passThrough.tenant(for: key) }
        throw ProxyError.unauthorized("the API key is not one of this proxy's virtual keys")
    }
}
