/// An OpenAI-compatible upstream the proxy may call, with the credential it uses there. The key
/// itself is read from the environment variable named here, never from the file.
public struct UpstreamProfile: Sendable, Hashable, Codable {
    /// The name tenants refer to.
    public var name: String
    /// The API root, e.g. `https://api.openai.com/v1`.
    public var baseURL: String
    /// The environment variable holding the upstream API key (`nil`: the upstream needs none).
    public var apiKeyEnvironment: String?
    /// Retries of a failed upstream call (429, 408, 5xx, connection failures), 0...10; `nil`: 3.
    /// Every retry stays within the cache's compute timeout.
    public var maxRetries: Int?

    enum CodingKeys: String, CodingKey {
        case name
        case baseURL = "base_url"
        case apiKeyEnvironment = "api_key_env"
        case maxRetries = "max_retries"
    }

    /// Creates a profile.
    public init(name: String, baseURL: String, apiKeyEnvironment: String?, maxRetries: Int? = nil) {
        self.name = name
        self.baseURL = baseURL
        self.apiKeyEnvironment = apiKeyEnvironment
        self.maxRetries = maxRetries
    }

    func validate() throws(ProxyConfigurationError) {
        guard !name.isEmpty, name.count <= 64 else { throw ProxyConfigurationError("an upstream's 'name' must be 1-64 characters") }
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw ProxyConfigurationError("upstream '\(name)': 'base_url' must start with http:// or https://, got '\(baseURL)'")
        }
        if let variable = apiKeyEnvironment, variable.isEmpty || !variable.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw ProxyConfigurationError("upstream '\(name)': 'api_key_env' must be an environment variable name, got '\(variable)'")
        }
        if let maxRetries, !(0...10).contains(maxRetries) {
            throw ProxyConfigurationError("upstream '\(name)': 'max_retries' must be 0...10, got \(maxRetries)")
        }
    }
}
