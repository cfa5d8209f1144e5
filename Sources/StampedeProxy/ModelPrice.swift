/// One model's price in the proxy's configuration (`"prices": {"gpt-4o-mini": {…}}`), so that
/// answers served from the cache count as money saved (`llmcache_money_saved_usd_total`).
public struct ModelPrice: Sendable, Hashable, Codable {
    /// USD per 1M prompt tokens.
    public var inputPerMillion: Double
    /// USD per 1M completion tokens.
    public var outputPerMillion: Double

    enum CodingKeys: String, CodingKey {
        case inputPerMillion = "input_per_million"
        case outputPerMillion = "output_per_million"
    }

    /// Creates a price.
    public init(inputPerMillion: Double, outputPerMillion: Double) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }

    func validate(model: String) throws(ProxyConfigurationError) {
        for (name, value) in [("input_per_million", inputPerMillion), ("output_per_million", outputPerMillion)] {
            guard value.isFinite, value >= 0, value <= 10_000 else {
                throw ProxyConfigurationError("prices.\(model).\(name) must be a number of USD from 0 to 10000, got \(value)")
            }
        }
    }
}
