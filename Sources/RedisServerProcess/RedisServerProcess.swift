import Foundation
package import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A private `redis-server` child process for tests, benchmarks, demos and chaos runs.
///
/// Each server gets a fresh temporary ``directory`` (its `dir`, log file `redis.log` and, by
/// default, its unix socket). Persistence is off, so a ``restart()`` loses all data and scripts,
/// like a real Redis restart without persistence. Call ``stop()`` when done; as a safety net the
/// server is also SIGKILLed when this object is deinitialised or the process exits normally.
package final class RedisServerProcess: Sendable {
    /// How long ``start(_:logger:)`` and ``restart()`` wait for the server to answer `PING`.
    private static let startTimeout: Duration = .seconds(10)

    /// How often readiness is checked while starting.
    private static let pollInterval: Duration = .milliseconds(10)

    /// How long ``stop()`` waits after SIGTERM before sending SIGKILL (and again after SIGKILL).
    private static let stopTimeout: Duration = .seconds(5)

    /// How many times a randomly picked TCP port is tried when startup fails (another process may grab it).
    private static let portAttempts = 3

    /// The mutable part: the current child process and whether ``stop()`` has run.
    private struct State {
        /// The current (or last) server process; replaced by ``restart()``.
        var child: ChildProcess
        /// Set once by ``stop()``; afterwards ``restart()`` fails and the directory is gone.
        var stopped = false
    }

    /// The temporary directory: the server's `dir`, holding its log file `redis.log`.
    package let directory: String

    /// The unix socket the server listens on, or `nil` when ``RedisServerOptions/unixSocket`` is off.
    package let socketPath: String?

    /// The TCP port the server listens on at 127.0.0.1, or `nil` when TCP is off.
    package let port: Int?

    /// The password the server requires, if any.
    private let password: String?

    /// The resolved path of the server executable.
    private let executablePath: String

    /// The command-line arguments (without `argv[0]`), reused unchanged by ``restart()``.
    private let arguments: [String]

    /// Where lifecycle events are logged; nothing is logged when `nil`.
    private let logger: Logger?

    /// Serialises ``stop()`` and ``restart()``.
    private let lifecycle = AsyncLock()

    /// The current process and the stopped flag.
    private let state: Mutex<State>

    /// Wraps a server that is already running and answering `PING`.
    private init(
        directory: String,
        socketPath: String?,
        port: Int?,
        password: String?,
        executablePath: String,
        arguments: [String],
        logger: Logger?,
        child: ChildProcess
    ) {
        self.directory = directory
        self.socketPath = socketPath
        self.port = port
        self.password = password
        self.executablePath = executablePath
        self.arguments = arguments
        self.logger = logger
        self.state = Mutex(State(child: child))
    }

    /// Kills the server (SIGKILL) and removes its directory if ``stop()`` was never called.
    deinit {
        let (child, stopped) = state.withLock { ($0.child, $0.stopped) }
        if !stopped {
            if child.send(SIGKILL) {
                logger?.warning(
                    "RedisServerProcess deinitialised without stop(); killed redis-server",
                    metadata: ["pid": "\(child.pid)", "directory": "\(directory)"]
                )
            }
            ServerSupport.removeDirectory(directory)
        }
    }

    /// The address clients should use.
    ///
    /// `unix:///tmp/stampede-redis-XXXXXX/redis.sock` (with `?password=PW` when a password is set) when
    /// listening on a unix socket, otherwise `redis://127.0.0.1:PORT` (`redis://:PW@127.0.0.1:PORT`).
    /// The password is percent-encoded (all but `A–Z a–z 0–9 - . _ ~`).
    package var url: String {
        if let socketPath {
            var url = "unix://\(socketPath)"
            if let password {
                url += "?password=\(ServerSupport.percentEncode(password))"
            }
            return url
        }
        let userInfo = password.map { ":\(ServerSupport.percentEncode($0))@" } ?? ""
        return "redis://\(userInfo)127.0.0.1:\(port ?? 0)"
    }

    /// The current server process id; it changes after ``restart()``.
    package var pid: Int32 {
        state.withLock { $0.child.pid }
    }

    /// Starts a private `redis-server` with `options` and waits until it answers `PING`.
    ///
    /// - Throws: ``RedisServerProcessError/executableNotFound(_:)`` when the executable is missing,
    ///   ``RedisServerProcessError/startFailed(_:log:)`` when it cannot be launched or exits early,
    ///   ``RedisServerProcessError/notReady(_:log:)`` when it does not answer within 10 s, or
    ///   `CancellationError` when the task is cancelled. The server and its directory are cleaned up
    ///   on every failure.
    package static func start(_ options: RedisServerOptions = .init(), logger: Logger? = nil) async throws -> RedisServerProcess {
        let executablePath = try ServerSupport.resolveExecutable(options.executable)
        let directory = try ServerSupport.makeTemporaryDirectory()
        let socketPath = options.unixSocket ? "\(directory)/redis.sock" : nil
        let randomPort = options.tcpPort == 0 || (options.tcpPort == nil && !options.unixSocket)

        var attempt = 0
        while true {
            attempt += 1
            do {
                let port = randomPort ? try ServerSupport.pickFreePort() : options.tcpPort
                let arguments = makeArguments(options, directory: directory, socketPath: socketPath, port: port)
                let child = try await launch(
                    executablePath: executablePath,
                    arguments: arguments,
                    directory: directory,
                    socketPath: socketPath,
                    port: port,
                    password: options.password,
                    logger: logger
                )
                let server = RedisServerProcess(
                    directory: directory,
                    socketPath: socketPath,
                    port: port,
                    password: options.password,
                    executablePath: executablePath,
                    arguments: arguments,
                    logger: logger,
                    child: child
                )
                logger?.info(
                    "started redis-server",
                    metadata: ["pid": "\(child.pid)", "url": "\(server.url)", "directory": "\(directory)"]
                )
                return server
            } catch RedisServerProcessError.startFailed(let reason, let log) where randomPort && attempt < portAttempts {
                // Most likely another process took the port between picking and binding it.
                logger?.debug(
                    "redis-server failed to start on a random port; retrying with another one",
                    metadata: ["attempt": "\(attempt)", "reason": "\(reason)", "log": "\(log)"]
                )
            } catch {
                ServerSupport.removeDirectory(directory)
                throw error
            }
        }
    }

    /// Returns `REDIS_URL` from the environment when it is set and not empty (with no server),
    /// otherwise starts a private server with default options and returns its ``url`` and itself.
    ///
    /// The caller must ``stop()`` the returned server, if any.
    package static func fromEnvironmentOrStart(logger: Logger? = nil) async throws -> (url: String, server: RedisServerProcess?) {
        if let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty {
            logger?.debug("using the redis server from REDIS_URL", metadata: ["url": "\(url)"])
            return (url, nil)
        }
        let server = try await start(logger: logger)
        return (server.url, server)
    }

    /// Stops the server: SIGTERM (plus SIGCONT, in case it was SIGSTOPped), waits up to 5 s, then
    /// SIGKILL, and removes the temporary directory.
    ///
    /// Safe to call repeatedly and from concurrent tasks (later calls wait for the first, then return);
    /// never hangs, even when the calling task is cancelled.
    package func stop() async {
        await lifecycle.lock()
        defer { lifecycle.unlock() }
        let (child, alreadyStopped) = state.withLock { state in
            let wasStopped = state.stopped
            state.stopped = true
            return (state.child, wasStopped)
        }
        guard !alreadyStopped else { return }
        await Self.terminate(child, logger: logger)
        ServerSupport.removeDirectory(directory)
        logger?.info("stopped redis-server", metadata: ["pid": "\(child.pid)", "directory": "\(directory)"])
    }

    /// Sends a raw signal (e.g. `SIGSTOP`, `SIGCONT`, `SIGKILL`) to the current server process.
    ///
    /// Does nothing if that process has already exited.
    package func kill(signal: Int32) {
        let child = state.withLock { $0.child }
        if child.send(signal) {
            logger?.debug("sent signal to redis-server", metadata: ["pid": "\(child.pid)", "signal": "\(signal)"])
        } else {
            logger?.debug("redis-server already exited; signal not sent", metadata: ["pid": "\(child.pid)", "signal": "\(signal)"])
        }
    }

    /// Stops the server process (keeping the directory) and starts a new one with the same options,
    /// socket path and port, then waits until it answers `PING` again. All data and scripts are lost.
    ///
    /// Works whether the old process is running, SIGSTOPped or already dead.
    ///
    /// - Throws: ``RedisServerProcessError/startFailed(_:log:)`` if the server was stopped with
    ///   ``stop()`` or the new process exits during startup (e.g. the port was taken meanwhile),
    ///   ``RedisServerProcessError/notReady(_:log:)``, or `CancellationError`. After a failure no
    ///   server runs; ``stop()`` still cleans up.
    package func restart() async throws {
        await lifecycle.lock()
        defer { lifecycle.unlock() }
        let (oldChild, stopped) = state.withLock { ($0.child, $0.stopped) }
        guard !stopped else {
            throw RedisServerProcessError.startFailed("restart() was called after stop(); start a new server instead", log: "")
        }
        await Self.terminate(oldChild, logger: logger)
        if let socketPath {
            // redis-server removes its socket on a clean shutdown, but not when it was SIGKILLed.
            _ = unlink(socketPath)
        }
        let child = try await Self.launch(
            executablePath: executablePath,
            arguments: arguments,
            directory: directory,
            socketPath: socketPath,
            port: port,
            password: password,
            logger: logger
        )
        state.withLock { $0.child = child }
        logger?.info("restarted redis-server", metadata: ["oldPid": "\(oldChild.pid)", "pid": "\(child.pid)", "url": "\(url)"])
    }

    /// Suspends until the current server process has exited, e.g. after someone sent it `SHUTDOWN`.
    ///
    /// Returns immediately if it has already exited. Does not remove the directory; call ``stop()``.
    package func waitUntilExit() async {
        let child = state.withLock { $0.child }
        await child.waitForExit()
    }

    /// The command line for a server in `directory` listening on `socketPath` and/or `port`.
    private static func makeArguments(
        _ options: RedisServerOptions,
        directory: String,
        socketPath: String?,
        port: Int?
    ) -> [String] {
        var arguments = [
            "--port", port.map(String.init) ?? "0",
            "--bind", "127.0.0.1",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--dir", directory,
            "--logfile", "\(directory)/redis.log",
            "--save", "",
            "--appendonly", "no",
            "--enable-debug-command", "local",
        ]
        if let configFile = options.configFile {
            arguments.insert(configFile, at: 0)
        }
        if let socketPath {
            arguments += ["--unixsocket", socketPath, "--unixsocketperm", "700"]
        }
        if let password = options.password {
            arguments += ["--requirepass", password]
        }
        if let maxmemory = options.maxmemory {
            arguments += ["--maxmemory", maxmemory]
        }
        if let policy = options.maxmemoryPolicy {
            arguments += ["--maxmemory-policy", policy]
        }
        return arguments + options.extraArguments
    }

    /// Spawns the server and polls it every 10 ms until it answers `PING`, for at most 10 s.
    ///
    /// On any failure (early exit, timeout, cancellation) the new process is terminated before throwing.
    private static func launch(
        executablePath: String,
        arguments: [String],
        directory: String,
        socketPath: String?,
        port: Int?,
        password: String?,
        logger: Logger?
    ) async throws -> ChildProcess {
        let child = try ChildProcess.spawn(
            executable: executablePath,
            arguments: arguments,
            outputPath: "\(directory)/redis.out",
            directory: directory
        )
        logger?.debug("spawned redis-server", metadata: ["pid": "\(child.pid)", "arguments": "\(arguments)"])

        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: startTimeout)
        var lastReason = "no readiness check completed"
        do {
            while true {
                if let status = child.exitStatus {
                    throw RedisServerProcessError.startFailed(
                        "redis-server (pid \(child.pid)) \(ChildProcess.describe(status: status)) during startup",
                        log: ServerSupport.logTail(directory: directory)
                    )
                }
                switch ReadinessProbe.check(socketPath: socketPath, port: port, password: password, expectedPID: child.pid) {
                case .ready:
                    return child
                case .notReady(let reason):
                    lastReason = reason
                }
                if clock.now >= deadline {
                    throw RedisServerProcessError.notReady(
                        "redis-server (pid \(child.pid)) did not answer PING within \(startTimeout) (last attempt: \(lastReason))",
                        log: ServerSupport.logTail(directory: directory)
                    )
                }
                try await Task.sleep(for: pollInterval)
            }
        } catch {
            await terminate(child, logger: logger)
            throw error
        }
    }

    /// Ends `child`: SIGTERM and SIGCONT, up to 5 s for it to exit, then SIGKILL and up to 5 s more.
    ///
    /// Never waits longer than that, regardless of task cancellation; logs if the process survives.
    private static func terminate(_ child: ChildProcess, logger: Logger?) async {
        guard !child.hasExited else { return }
        child.send(SIGTERM)
        child.send(SIGCONT)
        if await child.waitForExit(timeout: stopTimeout) { return }
        logger?.warning(
            "redis-server did not exit within \(stopTimeout) of SIGTERM; sending SIGKILL",
            metadata: ["pid": "\(child.pid)"]
        )
        child.send(SIGKILL)
        if await child.waitForExit(timeout: stopTimeout) { return }
        logger?.error("redis-server survived SIGKILL; giving up waiting for it", metadata: ["pid": "\(child.pid)"])
    }
}
