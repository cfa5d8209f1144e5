/// What a Redis server is, as `INFO server` and a vector-search probe tell: for `config check`
/// and for refusing early when a feature is missing.
public struct RedisServerInfo: Sendable, Hashable, CustomStringConvertible {
    /// `redis` or `valkey` (Valkey reports `server_name:valkey`).
    public var product: String
    /// The server's version (`valkey_version` for Valkey, else `redis_version`).
    public var version: String
    /// `standalone`, `cluster` or `sentinel` (`redis_mode`).
    public var mode: String
    /// Whether `FT.*` vector search answers (Redis 8, Redis Stack, RediSearch, valkey-search).
    public var vectorSearch: Bool

    /// Creates a description (public so tests and tools can build expected values).
    public init(product: String, version: String, mode: String, vectorSearch: Bool) {
        self.product = product
        self.version = version
        self.mode = mode
        self.vectorSearch = vectorSearch
    }

    /// Parses an `INFO server` reply; unknown fields stay `unknown`.
    public init(info: String, vectorSearch: Bool) {
        var fields: [Substring: Substring] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...]
        }
        let isValkey = fields["server_name"] == "valkey" || fields["valkey_version"] != nil
        self.init(
            product: isValkey ? "valkey" : "redis",
            version: String((isValkey ? fields["valkey_version"] : nil) ?? fields["redis_version"] ?? "unknown"),
            mode: String(fields["redis_mode"] ?? fields["server_mode"] ?? "unknown"),
            vectorSearch: vectorSearch
        )
    }

    /// For example `redis 8.2.3, standalone, vector search available`.
    public var description: String {
        "\(product) \(version), \(mode), vector search \(vectorSearch ? "available" : "not available")"
    }
}

extension RedisClient {
    /// Asks the server what it is: product, version, mode (`INFO server`), and whether vector search
    /// answers (`FT._LIST`; an unknown-command error means no).
    ///
    /// - Throws: ``RedisError`` if `INFO` itself fails (for example an ACL that denies it).
    public func serverInfo() async throws(RedisError) -> RedisServerInfo {
        let replies = try await send(pipeline: [RedisCommand("INFO", "server"), RedisCommand("FT._LIST")])
        guard replies.count == 2 else { throw RedisError(code: .protocolError, message: "INFO server answered \(replies.count) replies") }
        if case .error(let message) = replies[0] { throw RedisError(code: .server, message: message) }
        guard let info = replies[0].string else {
            throw RedisError(code: .protocolError, message: "INFO server answered \(String(describing: replies[0]).prefix(80))")
        }
        let vectorSearch: Bool
        if case .error = replies[1] { vectorSearch = false } else { vectorSearch = true }
        return RedisServerInfo(info: info, vectorSearch: vectorSearch)
    }
}
