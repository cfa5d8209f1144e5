#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisConfiguration {
    /// Parses a Redis URL.
    ///
    /// Accepted forms:
    /// - `redis://[user[:password]@]host[:port][/db][?name=client-name]` (default port 6379)
    /// - `rediss://…` the same over TLS (see ``RedisTLSConfiguration``), with optional
    ///   `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `tls_server_name` and
    ///   `tls_insecure_skip_verify=true` query parameters; a parameter left out is read from
    ///   `environment` (`REDIS_TLS_CA_FILE`, …; the process environment when `nil`).
    /// - `redis+cluster://h1:p1,h2:p2` a Redis Cluster through these seed nodes (any node's plain
    ///   `redis://` URL works too: the cluster is detected).
    /// - `redis+sentinel://[user:password@]h1:p1,h2:p2/<master-name>[/db][?sentinel_password=…]` the
    ///   primary that these sentinels name (default port 26379 is not assumed: give each port).
    /// - `unix:///path/to/redis.sock[?db=N][&user=U][&password=P][&name=client-name]`
    ///
    /// User and password may be percent-encoded. IPv6 hosts go in brackets: `redis://[::1]:6379`.
    /// Any malformed part throws ``RedisError/Code/configuration`` naming it.
    public init(url: String, environment: [String: String]? = nil) throws(RedisError) {
        func bad(_ message: String) -> RedisError {
            RedisError(code: .configuration, message: "malformed Redis URL '\(RedisConfiguration.redacted(url))': \(message)")
        }
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw bad("missing scheme; expected redis://host:port or unix:///path/to/socket")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let isCluster = scheme.hasSuffix("+cluster")
        let isSentinel = scheme.hasSuffix("+sentinel")
        var masterName: String?
        var sentinelPassword: String?
        var seeds: [Endpoint] = []
        var rest = Substring(url[schemeEnd.upperBound...])

        // Split off the query string.
        var query: [(String, String)] = []
        if let questionMark = rest.firstIndex(of: "?") {
            let queryText = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
            for pair in queryText.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                // Nothing of a malformed query is echoed: a password containing '?' or '&' would put
                // parts of itself here.
                guard parts.count == 2, !parts[0].isEmpty else { throw bad("a query parameter is not name=value (percent-encode '?', '&' and '@' in a password)") }
                guard let value = Self.percentDecode(parts[1]) else { throw bad("a query parameter has invalid percent-encoding") }
                query.append((String(parts[0]), value))
            }
        }

        var username: String?
        var password: String?
        var database = 0
        var clientName: String?
        let endpoint: Endpoint

        switch scheme {
        case "redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel":
            // Userinfo.
            if let at = rest.lastIndex(of: "@") {
                let userinfo = rest[..<at]
                rest = rest[rest.index(after: at)...]
                let parts = userinfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                guard let user = Self.percentDecode(parts[0]) else { throw bad("the user name has invalid percent-encoding") }
                if parts.count == 2 {
                    guard let pass = Self.percentDecode(parts[1]) else { throw bad("the password has invalid percent-encoding") }
                    password = pass
                    username = user.isEmpty ? nil : user
                } else {
                    // `redis://secret@host` is the common shorthand for a password alone.
                    password = user
                }
                if password?.isEmpty == true { throw bad("the password is empty; omit the '@' part for no password") }
            }
            // Path: the database number.
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                var path = rest[rest.index(after: slash)...]
                if isSentinel {
                    let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                    guard let name = parts.first, !name.isEmpty, let decoded = Self.percentDecode(name) else {
                        throw bad("the master name is missing: redis+sentinel://host:26379/<master-name>[/db]")
                    }
                    masterName = decoded
                    path = parts.count == 2 ? parts[1] : ""
                }
                if !path.isEmpty {
                    guard let number = Int(path), number >= 0 else { throw bad("the database (after '/') is not a non-negative integer") }
                    database = number
                }
            }
            // Host and port; a cluster URL lists several seeds, comma-separated.
            let hostPorts = hostPort.split(separator: ",", omittingEmptySubsequences: false)
            if hostPorts.count > 1 && !isCluster && !isSentinel {
                throw bad("several hosts are given; use redis+cluster:// for a cluster's seed nodes or redis+sentinel:// for sentinels")
            }
            var endpoints: [Endpoint] = []
            for hostPort in hostPorts {
                endpoints.append(try Self.parseHostPort(hostPort, bad: bad))
            }
            endpoint = endpoints[0]
            seeds = endpoints
        case "unix":
            guard rest.hasPrefix("/") else { throw bad("the socket path must be absolute: unix:///path/to/redis.sock") }
            guard let path = Self.percentDecode(rest), path.count > 1 else { throw bad("the socket path is missing") }
            endpoint = .unixSocket(path: path)
        default:
            throw bad("unsupported scheme '\(scheme)'; use redis://, rediss:// (TLS), redis+cluster:// or unix://")
        }

        var tls: RedisTLSConfiguration? = scheme.hasPrefix("rediss") ? RedisTLSConfiguration() : nil
        var tlsFieldsFromURL = Set<Int>()

        for (name, value) in query {
            switch name {
            case "db":
                guard let number = Int(value), number >= 0 else { throw bad("db is not a non-negative integer") }
                database = number
            case "password": password = value
            case "user", "username": username = value
            case "name", "client_name": clientName = value
            case "sentinel_password":
                guard isSentinel else { throw bad("sentinel_password needs a redis+sentinel:// URL") }
                sentinelPassword = value
            default:
                if let index = RedisTLSConfiguration.queryParameters.firstIndex(of: name) {
                    guard tls != nil else { throw bad("\(name) needs a rediss:// URL (TLS)") }
                    do throws(RedisError) { try tls?.set(fieldAt: index, to: value) } catch { throw bad(error.message) }
                    tlsFieldsFromURL.insert(index)
                    continue
                }
                throw bad("an unknown query parameter was given; supported: db, user, password, name, and for rediss:// \(RedisTLSConfiguration.queryParameters.joined(separator: ", ")) (percent-encode '?', '&' and '@' in a password)")
            }
        }
        if tls != nil {
            for (index, variable) in RedisTLSConfiguration.environmentVariables.enumerated() where !tlsFieldsFromURL.contains(index) {
                guard let value = environment.map({ $0[variable] }) ?? Self.processEnvironment(variable), !value.isEmpty else { continue }
                do throws(RedisError) { try tls?.set(fieldAt: index, to: value) } catch {
                    throw RedisError(code: .configuration, message: "\(variable): \(error.message)")
                }
            }
        }

        self.init(endpoint: endpoint, username: username, password: password, database: database, clientName: clientName, tls: tls)
        if isCluster { self.deployment = .cluster(seeds: seeds) }
        if isSentinel {
            guard let masterName else { throw bad("the master name is missing: redis+sentinel://host:26379/<master-name>[/db]") }
            self.deployment = .sentinel(sentinels: seeds, masterName: masterName, password: sentinelPassword)
        }
        do throws(RedisError) {
            try validate()
        } catch {
            throw bad(error.message)
        }
    }

    /// Query parameters whose values are secrets (compared without case).
    private static let secretParameters: Set<String> = ["password", "sentinel_password", "pass", "pwd", "secret", "token", "key", "api_key", "apikey", "access_token", "auth"]

    /// The URL with every credential replaced by `***`, safe for logs and error messages: the whole
    /// user-info (up to the last `@`, wherever a `?` or `/` in a password puts it) but a plain user
    /// name, and the value of every secret query parameter (`password`, `PASSWORD`, `token`, `key`,
    /// ..., each occurrence). Works for `redis://`, `unix://` and `http(s)://` URLs alike.
    public static func redacted(_ url: String) -> String {
        var result = url
        if let schemeEnd = url.firstRange(of: "://"), let at = url[schemeEnd.upperBound...].lastIndex(of: "@") {
            let userinfo = url[schemeEnd.upperBound..<at]
            let user = userinfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let plainUser = user.count == 2 && user[0].allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
            let redactedUserinfo = plainUser ? "\(user[0]):***" : "***"
            result = String(url[..<schemeEnd.upperBound]) + redactedUserinfo + String(url[at...])
        }
        guard let question = result.firstIndex(of: "?") else { return result }
        let query = result[result.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, secretParameters.contains(parts[0].lowercased()) else { return String(pair) }
            return "\(parts[0])=***"
        }
        return String(result[...question]) + query.joined(separator: "&")
    }

    /// `host[:port]` or `[ipv6][:port]` (default port 6379).
    private static func parseHostPort(_ hostPort: Substring, bad: (String) -> RedisError) throws(RedisError) -> Endpoint {
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw bad("IPv6 host is missing its closing ']'") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("unexpected '\(after)' after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw bad("the host is missing") }
        if host.contains(where: { $0 == " " || $0 == "/" }) { throw bad("host '\(host)' contains an invalid character") }
        var port = 6379
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw bad("port '\(portText)' is not a number from 1 to 65535")
            }
            port = number
        }
        return .tcp(host: String(host), port: port)
    }

    private static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    private static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validatingUTF8Bytes: bytes)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
