/// The one error type thrown by `RedisClient`.
///
/// ``code`` says what kind of failure it was; ``message`` keeps Redis's own text verbatim
/// where the server produced it (for example `NOSCRIPT No matching script. Please use EVAL.`
/// or `WRONGTYPE Operation against a key holding the wrong kind of value`), and
/// ``description`` adds what to do about it.
public struct RedisError: Error, Sendable, Hashable {
    /// The kind of failure. Extensible: match with `==` against the static members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connection, timeout, protocolError, server, authentication, configuration, cancelled, shutdown, tls, crossSlot, readOnly
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection could not be made, was closed, or dropped while the command was in flight.
        /// A command that fails this way may or may not have run on the server.
        public static let connection = Code(.connection)
        /// The command (or connecting) took longer than its timeout. The connection it used is discarded.
        public static let timeout = Code(.timeout)
        /// The bytes from the server could not be parsed, or a reply arrived that no command asked for.
        public static let protocolError = Code(.protocolError)
        /// Redis answered with an error reply; ``RedisError/message`` is its text verbatim.
        public static let server = Code(.server)
        /// Redis refused the credentials (`WRONGPASS`, `NOAUTH`, `NOPERM` during AUTH).
        public static let authentication = Code(.authentication)
        /// The configuration or URL is invalid; nothing was sent.
        public static let configuration = Code(.configuration)
        /// The calling task was cancelled before the reply arrived.
        public static let cancelled = Code(.cancelled)
        /// The client was shut down.
        public static let shutdown = Code(.shutdown)
        /// TLS could not be set up: the server's certificate was refused (untrusted CA, expired, wrong
        /// name), the server refused ours, or a certificate or key file could not be loaded.
        /// ``RedisError/message`` says which and what to change.
        public static let tls = Code(.tls)
        /// On Redis Cluster, one command's keys map to different hash slots; nothing was sent.
        /// ``RedisError/message`` names the slots and how to co-locate the keys (a hash tag).
        public static let crossSlot = Code(.crossSlot)
        /// The node is a read-only replica (`READONLY …`, verbatim), or the node Sentinel named is
        /// not the primary: the write did not run. Connect to the primary, or through
        /// `redis+sentinel://` so the client follows failovers.
        public static let readOnly = Code(.readOnly)

        /// The code's name, e.g. `timeout`.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// The message: Redis's text verbatim for server and authentication errors, otherwise our explanation.
    public var message: String

    /// Creates an error.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// For a server error, its first word (`NOSCRIPT`, `WRONGTYPE`, `ERR`, ...), else `nil`.
    public var serverErrorPrefix: String? {
        guard code == .server || code == .authentication else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }
}

extension RedisError: CustomStringConvertible {
    /// What failed, in Redis's words where it has them, and what to do.
    public var description: String {
        switch code {
        case .connection: return "Redis connection error: \(message). Check that Redis is running and reachable (REDIS_URL)."
        case .timeout: return "Redis timeout: \(message). Redis may be overloaded or paused; raise the timeout if this is expected."
        case .protocolError: return "Redis protocol error: \(message). The connection was closed."
        case .server: return "Redis error: \(message)"
        case .authentication: return "Redis authentication failed: \(message). Check the user and password in REDIS_URL."
        case .configuration: return "Invalid Redis configuration: \(message)"
        case .cancelled: return "Redis command cancelled: \(message)"
        case .shutdown: return "Redis client shut down: \(message)"
        case .tls: return "Redis TLS error: \(message)"
        case .crossSlot: return "Redis Cluster cross-slot command: \(message)"
        case .readOnly: return "Redis node is read-only: \(message). Writes need the primary: connect to it, or use redis+sentinel:// so the client follows failovers."
        default: return "Redis error (\(code)): \(message)"
        }
    }
}
