import Crypto
import Foundation
import LLMCache

/// Turns a pass-through caller's upstream key into its tenant: the namespace is `pt-` and the
/// first 16 bytes of HMAC-SHA256(secret, key) in hex, so equal keys share a namespace, different
/// keys never do, and the namespace reveals nothing about the key without the secret.
struct PassThroughKeys: Sendable {
    let configuration: PassThroughConfiguration
    /// The secret's bytes (swift-crypto's `SymmetricKey` is not `Sendable`; one is made per key).
    private let secret: [UInt8]

    /// - Throws: ``ProxyConfigurationError`` when the secret is shorter than
    ///   ``PassThroughConfiguration/minimumSecretLength``.
    init(_ configuration: PassThroughConfiguration, secret: String) throws(ProxyConfigurationError) {
        guard secret.utf8.count >= PassThroughConfiguration.minimumSecretLength else {
            throw ProxyConfigurationError(
                "pass_through needs a secret of at least \(PassThroughConfiguration.minimumSecretLength) characters in \(configuration.hmacSecretEnvironment) (e.g. from `openssl rand -hex 32`)"
            )
        }
        self.configuration = configuration
        self.secret = Array(secret.utf8)
    }

    /// The tenant for a caller presenting `key`.
    func tenant(for key: String) -> Tenant {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(key.utf8), using: SymmetricKey(data: secret))
        let hex = mac.prefix(16).map { byte in String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }.joined()
        var tenant = Tenant(name: "pass-through", namespace: PassThroughConfiguration.namespacePrefix + hex, upstream: configuration.upstream, models: Set(configuration.models ?? []))
        tenant.upstreamAPIKey = UpstreamAPIKey(key)
        return tenant
    }
}
