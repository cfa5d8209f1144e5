/// Why a private `redis-server` could not be started; each description says what to do about it.
package enum RedisServerProcessError: Error, CustomStringConvertible {
    /// The executable (the associated value, as configured, usually `redis-server`) is not on `PATH`.
    case executableNotFound(String)

    /// The server could not be launched or exited during startup; `log` holds the tail of its log.
    case startFailed(String, log: String)

    /// The server did not answer `PING` within the start timeout; `log` holds the tail of its log.
    case notReady(String, log: String)

    /// A human-readable explanation, including what to do and the log tail when there is one.
    package var description: String {
        switch self {
        case .executableNotFound(let name):
            return "\(name) not found on PATH: install it with `apt-get install redis-server`, "
                + "or set REDIS_URL to use an existing server"
        case .startFailed(let reason, let log):
            return "redis-server failed to start: \(reason). Check that the options and extra arguments "
                + "are valid for this redis-server version (see the log below), "
                + "or set REDIS_URL to use an existing server."
                + Self.formatLog(log)
        case .notReady(let reason, let log):
            return "redis-server did not become ready: \(reason). The machine may be overloaded "
                + "or the server stuck during startup; check the log below, retry, "
                + "or set REDIS_URL to use an existing server."
                + Self.formatLog(log)
        }
    }

    /// Appends `log` on its own lines, or nothing when it is empty.
    private static func formatLog(_ log: String) -> String {
        log.isEmpty ? "" : "\n--- server log (tail) ---\n" + log
    }
}
