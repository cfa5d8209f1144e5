import CHiredis
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A FIFO lock that suspends (instead of blocking a thread) while another task holds it.
///
/// Serialises ``RedisServerProcess/stop()`` and ``RedisServerProcess/restart()``, which await while
/// holding it. Waiting is not cancellable; every holder releases it after a bounded time.
final class AsyncLock: Sendable {
    /// Whether the lock is held, and the tasks queued for it in arrival order.
    private struct State {
        /// Whether some task holds the lock.
        var locked = false
        /// Tasks waiting for the lock; `unlock()` hands the lock to the first one.
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// The lock's state, guarded by a (briefly held) mutex.
    private let state = Mutex(State())

    /// Creates an unlocked lock.
    init() {}

    /// Suspends until the lock is acquired.
    func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state in
                if !state.locked {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired {
                continuation.resume()
            }
        }
    }

    /// Releases the lock, handing it directly to the longest waiting task if there is one.
    func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Small blocking helpers used by ``RedisServerProcess``: files, ports and the readiness probe.
package enum ServerSupport {
    /// Finds `name` on `PATH` (or checks it directly when it contains a `/`) and returns its path.
    package static func resolveExecutable(_ name: String) throws(RedisServerProcessError) -> String {
        if name.contains("/") {
            guard isExecutableFile(name) else { throw .executableNotFound(name) }
            return name
        }
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = directory.hasSuffix("/") ? "\(directory)\(name)" : "\(directory)/\(name)"
            if isExecutableFile(candidate) {
                return candidate
            }
        }
        throw .executableNotFound(name)
    }

    /// Whether `path` is a regular file this process may execute.
    private static func isExecutableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return false
        }
        return access(path, X_OK) == 0
    }

    /// The longest base directory that still leaves room for `/stampede-redis-XXXXXX/redis.sock`
    /// within the ~107-byte limit of a unix socket path.
    private static let maximumBaseDirectoryLength = 70

    /// Creates a fresh, private (mode 700) directory such as `/tmp/stampede-redis-AbC123`.
    ///
    /// Uses `FileManager.default.temporaryDirectory`, or `/tmp` when that path is too long for a socket.
    static func makeTemporaryDirectory() throws(RedisServerProcessError) -> String {
        var base = FileManager.default.temporaryDirectory.path
        while base.count > 1 && base.hasSuffix("/") {
            base.removeLast()
        }
        if base.utf8.count > maximumBaseDirectoryLength {
            base = "/tmp"
        }
        var template = Array("\(base)/stampede-redis-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let baseAddress = buffer.baseAddress, mkdtemp(baseAddress) != nil else { return nil }
            return String(cString: baseAddress)
        }
        guard let directory else {
            let reason = String(cString: strerror(errno))
            throw .startFailed("could not create a temporary directory under \(base): \(reason)", log: "")
        }
        return directory
    }

    /// Removes `directory` and everything in it, ignoring errors.
    static func removeDirectory(_ directory: String) {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Asks the kernel for a currently free TCP port on 127.0.0.1 (bind to port 0, read it, close).
    ///
    /// Another process may take the port before redis binds it; callers retry in that case.
    package static func pickFreePort() throws(RedisServerProcessError) -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else {
            throw .startFailed("could not create a socket to find a free port: \(String(cString: strerror(errno)))", log: "")
        }
        defer { close(fd) }

        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            throw .startFailed("could not bind 127.0.0.1:0 to find a free port: \(String(cString: strerror(errno)))", log: "")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(fd, $0, &length)
            }
        }
        guard named == 0 else {
            throw .startFailed("getsockname failed while finding a free port: \(String(cString: strerror(errno)))", log: "")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The last `lineCount` lines of the server's log file and of its captured stdout/stderr
    /// (where configuration errors go before the log file is opened), labelled; empty if both are empty.
    static func logTail(directory: String, lineCount: Int = 25) -> String {
        var parts: [String] = []
        for (label, file) in [("redis.log", "redis.log"), ("stdout/stderr", "redis.out")] {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(file)"), !data.isEmpty else {
                continue
            }
            let lines = String(decoding: data, as: UTF8.self)
                .split(separator: "\n", omittingEmptySubsequences: false)
            let tail = lines.suffix(lineCount + 1).joined(separator: "\n")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if !tail.isEmpty {
                parts.append("[\(label)]\n\(tail)")
            }
        }
        return parts.joined(separator: "\n")
    }

    /// Percent-encodes everything except RFC 3986 unreserved characters, so the result is safe
    /// both as a URL query value and as URL user info.
    static func percentEncode(_ value: String) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}

/// The outcome of one readiness check.
enum ProbeResult: Sendable {
    /// The server answered `PING` with `PONG`.
    case ready
    /// The server could not be reached or did not answer `PONG` yet; the reason is kept for error messages.
    case notReady(String)
}

/// Checks with hiredis' blocking API whether a server answers `PING` (after `AUTH` when needed).
enum ReadinessProbe {
    /// Timeout for connecting to the server.
    private static let connectTimeout = timeval(tv_sec: 0, tv_usec: 200_000)

    /// Timeout for each command's round trip.
    private static let commandTimeout = timeval(tv_sec: 1, tv_usec: 0)

    /// Connects (unix socket preferred, else 127.0.0.1:`port`), authenticates if `password` is set,
    /// sends `PING` and expects `PONG`. Blocks for at most about 3.2 s; usually for microseconds.
    ///
    /// Over TCP another server may already hold the port while ours is failing to bind it, so the
    /// answering server's `process_id` (from `INFO server`) must also be `expectedPID`.
    static func check(socketPath: String?, port: Int?, password: String?, expectedPID: Int32) -> ProbeResult {
        let context: UnsafeMutablePointer<redisContext>?
        if let socketPath {
            context = redisConnectUnixWithTimeout(socketPath, connectTimeout)
        } else if let port {
            context = redisConnectWithTimeout("127.0.0.1", Int32(port), connectTimeout)
        } else {
            return .notReady("no address to connect to")
        }
        guard let context else {
            return .notReady("could not allocate a hiredis context")
        }
        defer { redisFree(context) }
        if context.pointee.err != 0 {
            return .notReady("connect: \(errorString(context))")
        }
        _ = redisSetTimeout(context, commandTimeout)

        return withSIGPIPEBlocked {
            if let password {
                switch command(context, ["AUTH", password]) {
                case .failure(let reason):
                    return .notReady("AUTH: \(reason)")
                case .success:
                    break
                }
            }
            switch command(context, ["PING"]) {
            case .failure(let reason):
                return .notReady("PING: \(reason)")
            case .success(let answer):
                guard answer == "PONG" else { return .notReady("PING answered \(answer)") }
            }
            guard socketPath == nil else { return .ready }
            switch command(context, ["INFO", "server"]) {
            case .failure(let reason):
                return .notReady("INFO server: \(reason)")
            case .success(let info):
                let processID = info.split(whereSeparator: \.isNewline)
                    .first { $0.hasPrefix("process_id:") }
                    .flatMap { Int32($0.dropFirst("process_id:".count).trimmingCharacters(in: .whitespaces)) }
                if let processID, processID != expectedPID {
                    return .notReady("port \(port ?? 0) is served by another process (pid \(processID))")
                }
                return .ready
            }
        }
    }

    /// A probe failure's description.
    private struct Failure: Error {
        /// What went wrong.
        let message: String
    }

    /// Sends one command and returns its status/string reply, or the error reply / I/O error as a failure.
    private static func command(_ context: UnsafeMutablePointer<redisContext>, _ arguments: [String]) -> Result<String, Failure> {
        let cStrings = arguments.map { strdup($0) }
        defer { for pointer in cStrings { free(pointer) } }
        var argv: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) }
        let lengths: [Int] = arguments.map { $0.utf8.count }
        guard let raw = redisCommandArgv(context, Int32(arguments.count), &argv, lengths) else {
            return .failure(Failure(message: errorString(context)))
        }
        defer { freeReplyObject(raw) }
        let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
        var text = ""
        if let str = reply.str, reply.len > 0 {
            text = String(decoding: UnsafeRawBufferPointer(start: str, count: reply.len), as: UTF8.self)
        }
        switch reply.type {
        case REDIS_REPLY_STATUS, REDIS_REPLY_STRING:
            return .success(text)
        case REDIS_REPLY_ERROR:
            return .failure(Failure(message: text))
        default:
            return .failure(Failure(message: "unexpected reply type \(reply.type)"))
        }
    }

    /// The context's error message (`errstr`), or a generic one.
    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        let message = withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return message.isEmpty ? "hiredis error \(context.pointee.err)" : message
    }

    /// Runs `body` with SIGPIPE blocked on this thread and discards a SIGPIPE it raised, so writing
    /// to a server that just closed the connection cannot kill this process (hiredis uses plain `write`).
    private static func withSIGPIPEBlocked<T>(_ body: () -> T) -> T {
        var sigpipe = sigset_t()
        sigemptyset(&sigpipe)
        sigaddset(&sigpipe, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &sigpipe, &previous)
        let result = body()
        if sigismember(&previous, SIGPIPE) == 0 {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                #if canImport(Darwin)
                var received: Int32 = 0
                sigwait(&sigpipe, &received)
                #else
                var noWait = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&sigpipe, nil, &noWait)
                #endif
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        return result
    }
}
