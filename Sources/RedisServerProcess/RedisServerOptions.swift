#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How to start a private `redis-server` with ``RedisServerProcess/start(_:logger:)``.
///
/// The defaults start a server that listens only on a unix socket in a fresh
/// temporary directory, with persistence off and `DEBUG` enabled for local clients.
package struct RedisServerOptions: Sendable {
    /// Listen on a unix socket (`<directory>/redis.sock`, mode 700) in the fresh temporary directory.
    package var unixSocket: Bool = true

    /// The TCP port to listen on (always bound to 127.0.0.1).
    ///
    /// - `nil`: no TCP listener when ``unixSocket`` is `true`; a free random port when it is `false`.
    /// - `0`: pick a free random port (retried up to 3 times if another process grabs it first).
    /// - any other value: use exactly that port.
    package var tcpPort: Int? = nil

    /// The password the server requires (`requirepass`); `nil` for no authentication.
    package var password: String? = nil

    /// The server's memory limit (`maxmemory`), e.g. `"2mb"`; `nil` for no limit.
    package var maxmemory: String? = nil

    /// The eviction policy (`maxmemory-policy`), e.g. `"allkeys-lru"`; `nil` for redis' default.
    package var maxmemoryPolicy: String? = nil

    /// Additional command-line arguments, appended last so they override the defaults,
    /// e.g. `["--appendonly", "yes"]`.
    package var extraArguments: [String] = []

    /// The server executable: a name looked up on `PATH`, or a path containing a `/`.
    /// Default: `STAMPEDE_REDIS_SERVER` when set (the server matrix runs every private server of a
    /// test run on Redis 8 or Valkey this way), else `redis-server`.
    package var executable: String = RedisServerOptions.defaultExecutable

    /// `STAMPEDE_REDIS_SERVER`, else `redis-server`.
    package static var defaultExecutable: String {
        if let configured = getenv("STAMPEDE_REDIS_SERVER").map({ String(cString: $0) }), !configured.isEmpty { return configured }
        return "redis-server"
    }

    /// A configuration file passed as the first argument (redis-server requires it there), e.g. a
    /// `sentinel.conf` with `--sentinel` in ``extraArguments``; it must be writable (Sentinel rewrites it).
    package var configFile: String? = nil

    /// Options with all defaults: unix socket only, no password, no memory limit.
    package init() {}
}
