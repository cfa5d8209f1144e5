/// Where and how to connect to Redis.
///
/// Build one from a URL (`redis://[user[:password]@]host[:port][/db]`, `rediss://…` for TLS, or
/// `unix:///path/to/redis.sock?db=N&password=...`) or field by field. Every field has a safe default;
/// ``validate()`` explains any value that cannot work.
public struct RedisConfiguration: Sendable, Hashable {
    /// A TCP address or a unix domain socket.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// A host name or IP address and a port.
        case tcp(host: String, port: Int)
        /// The path of a unix domain socket.
        case unixSocket(path: String)

        /// `host:port` or the socket path, for logs (never contains credentials).
        public var description: String {
            switch self {
            case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path): return path
            }
        }
    }

    /// What kind of deployment the endpoint belongs to.
    public enum Deployment: Sendable, Hashable {
        /// Decided at the first connection: a node whose `INFO cluster` says `cluster_enabled:1`
        /// switches the client to cluster mode (slot routing), anything else is standalone.
        case automatic
        /// A Redis Cluster reached through these seed nodes (any of them will do; the client loads
        /// the slot map from the first that answers). `redis+cluster://h1:p1,h2:p2` sets this.
        case cluster(seeds: [Endpoint])
        /// A primary found through Redis Sentinel: the client asks these sentinels for the address
        /// of `masterName`, checks that the node is a primary (`ROLE`), follows `+switch-master`,
        /// and rediscovers the primary when a node answers `READONLY`.
        /// `redis+sentinel://h1:p1,h2:p2/<master-name>` sets this. `password` is the sentinels' own
        /// (`requirepass` of the sentinels), if they have one; the URL's user and password are the data nodes'.
        case sentinel(sentinels: [Endpoint], masterName: String, password: String?)
    }

    /// Exponential backoff with jitter between reconnect attempts.
    public struct Backoff: Sendable, Hashable {
        /// The wait after the first failed attempt.
        public var initial: Duration
        /// The longest wait between attempts.
        public var maximum: Duration
        /// The factor applied after each consecutive failure.
        public var multiplier: Double
        /// The fraction of each wait that is randomised (0 = none, 1 = "full jitter").
        public var jitter: Double

        /// Creates a backoff policy. Defaults: 25 ms doubling up to 2 s, with 50% jitter.
        public init(initial: Duration = .milliseconds(25), maximum: Duration = .seconds(2), multiplier: Double = 2, jitter: Double = 0.5) {
            self.initial = initial
            self.maximum = maximum
            self.multiplier = multiplier
            self.jitter = jitter
        }

        /// The wait before attempt number `failures + 1`, given a uniform random number in [0, 1).
        public func delay(afterFailures failures: Int, random: Double) -> Duration {
            guard failures > 0 else { return .zero }
            let base = initial.secondsDouble * pow(multiplier, Double(min(failures - 1, 30)))
            let capped = min(base, maximum.secondsDouble)
            let jittered = capped * (1 - jitter * random)
            return .nanoseconds(Int64(jittered * 1e9))
        }
    }

    /// Where Redis listens.
    public var endpoint: Endpoint
    /// The ACL user name for `AUTH user password`; `nil` for `AUTH password` (the default user).
    public var username: String?
    /// The password; `nil` sends no `AUTH`.
    public var password: String?
    /// The logical database chosen with `SELECT` (0 sends nothing).
    public var database: Int
    /// The name set with `CLIENT SETNAME` so operators can find this worker in `CLIENT LIST`. No spaces.
    public var clientName: String?
    /// How long establishing a TCP or unix-socket connection may take.
    public var connectTimeout: Duration
    /// How long any one command may wait for its reply. A command that times out fails with
    /// ``RedisError/Code/timeout`` and its connection is discarded.
    public var commandTimeout: Duration
    /// How many multiplexed connections the client keeps. Each carries any number of concurrent,
    /// pipelined commands, so a small number (1–4) is usually best.
    public var poolSize: Int
    /// The wait between reconnect attempts.
    public var reconnectBackoff: Backoff
    /// The largest reply accepted (bytes, array elements, nesting); a reply past them closes the
    /// connection with ``RedisError/Code/protocolError`` before it is buffered.
    public var replyLimits: RESPReplyLimits = RESPReplyLimits()
    /// How often the idle subscriber connection sends `PING`, so a connection a proxy or NAT
    /// dropped silently is noticed (the PING times out) and re-established (1 s – 1 h).
    public var subscriberKeepalive: Duration = .seconds(30)
    /// TLS settings; `nil` speaks plaintext. A `rediss://` URL sets this.
    public var tls: RedisTLSConfiguration?
    /// Standalone or cluster; ``Deployment/automatic`` (the default) detects a cluster at the first connection.
    public var deployment: Deployment = .automatic

    /// A configuration for `endpoint` with defaults: no auth, database 0, 5 s timeouts, 2 connections.
    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = nil,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(5),
        poolSize: Int = 2,
        reconnectBackoff: Backoff = .init(),
        tls: RedisTLSConfiguration? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.poolSize = poolSize
        self.reconnectBackoff = reconnectBackoff
        self.tls = tls
    }

    /// Checks every value; throws ``RedisError/Code/configuration`` naming the bad one and what to use.
    public func validate() throws(RedisError) {
        func bad(_ message: String) -> RedisError { RedisError(code: .configuration, message: message) }
        switch endpoint {
        case .tcp(let host, let port):
            if host.isEmpty { throw bad("the host is empty") }
            if !(1...65535).contains(port) { throw bad("port \(port) is out of range; use 1-65535") }
        case .unixSocket(let path):
            if path.isEmpty { throw bad("the unix socket path is empty") }
            if path.utf8.count > 107 { throw bad("the unix socket path is \(path.utf8.count) bytes; the limit is 107") }
        }
        if let tls {
            if case .unixSocket = endpoint { throw bad("TLS over a unix socket is not supported by Redis; use redis:// over TCP with rediss://, or unix:// without TLS") }
            try tls.validate()
        }
        if case .sentinel(let sentinels, let masterName, _) = deployment {
            if sentinels.isEmpty { throw bad("Sentinel needs at least one sentinel address") }
            if masterName.isEmpty || masterName.contains(where: { $0 == " " || $0 == "/" }) {
                throw bad("the Sentinel master name '\(masterName)' must be non-empty, without spaces or '/'")
            }
        }
        if case .cluster(let seeds) = deployment {
            if seeds.isEmpty { throw bad("a cluster needs at least one seed node") }
            if database != 0 { throw bad("Redis Cluster has only database 0; remove /\(database) from the URL") }
            if seeds.contains(where: { if case .unixSocket = $0 { return true } else { return false } }) {
                throw bad("cluster seed nodes must be TCP host:port addresses")
            }
        }
        if database < 0 { throw bad("database \(database) is negative; use 0 or more") }
        if let clientName, clientName.isEmpty || clientName.contains(where: { $0 == " " || $0 == "\n" || $0 == "\r" }) {
            throw bad("client name '\(clientName)' must be non-empty and contain no spaces or newlines")
        }
        if username != nil && password == nil { throw bad("a user name was given without a password") }
        if connectTimeout <= .zero { throw bad("connectTimeout must be positive") }
        if commandTimeout <= .zero { throw bad("commandTimeout must be positive") }
        if poolSize < 1 || poolSize > 64 { throw bad("poolSize \(poolSize) must be between 1 and 64") }
        if subscriberKeepalive < .seconds(1) || subscriberKeepalive > .seconds(3600) {
            throw bad("subscriberKeepalive \(subscriberKeepalive) must be between 1 s and 1 h")
        }
        if reconnectBackoff.initial <= .zero || reconnectBackoff.maximum < reconnectBackoff.initial {
            throw bad("reconnectBackoff needs 0 < initial <= maximum")
        }
        if replyLimits.maxReplyBytes < 1024 || replyLimits.maxArrayElements < 16 || !(1...7).contains(replyLimits.maxDepth) {
            throw bad("replyLimits need maxReplyBytes >= 1024, maxArrayElements >= 16 and maxDepth in 1...7 (hiredis's limit)")
        }
        if !(0...1).contains(reconnectBackoff.jitter) || reconnectBackoff.multiplier < 1 {
            throw bad("reconnectBackoff needs jitter in [0, 1] and multiplier >= 1")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
