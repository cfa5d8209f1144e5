/// An OpenAI-compatible upstream the proxy may call, with the credential it uses there. The key
/// itself is read from the environment variable named here, never from the file.
public struct UpstreamProfile: Sendable, Hashable, Codable {
    /// The name tenants refer to.
    public var name: String
    /// The API root, e.g. `https://api.openai.com/v1`.
    public var baseURL: String
    /// The environment variable holding the upstream API key (`nil`: the upstream needs none).
    public var apiKeyEnvironment: String?

    enum CodingKeys: String, CodingKey {
        case name
        case baseURL = "base_url"
        case apiKeyEnvironment = "api_key_env"
    }

    /// Creates a profile.
    public init(name: String, baseURL: String, apiKeyEnvironment: String?) {
        self.name = name
        self.baseURL = baseURL
        self.apiKeyEnvironment = apiKeyEnvironment
    }

    func validate() throws(ProxyConfigurationError) {
        guard !name.isEmpty, name.count <= 64 else { throw ProxyConfigurationError("an upstream's 'name' must be 1-64 characters") }
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw ProxyConfigurationError("upstream '\(name)': 'base_url' must start with http:// or https://, got '\(baseURL)'")
        }
        if let variable = apiKeyEnvironment, variable.isEmpty || !variable.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw ProxyConfigurationError("upstream '\(name)': 'api_key_env' must be an environment variable name, got '\(variable)'")
        }
    }
}
