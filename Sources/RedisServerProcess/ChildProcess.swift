import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Children that have been spawned but not yet reaped, with the temporary directory of each.
///
/// A pid is only in here while its process is alive or a zombie (the reaper removes it under
/// the child's lock *before* reaping), so the pid cannot have been reused by another process.
/// The `atexit` hook uses this to kill servers whose owner never called `stop()`.
private let liveChildren = Mutex<[pid_t: String]>([:])

/// Installs ``killLiveChildrenAtExit()`` as an `atexit` hook the first time it is read.
///
/// Swift initialises globals lazily and exactly once, so this runs `atexit` a single time.
private let exitHookInstalled: Bool = {
    atexit { killLiveChildrenAtExit() }
    return true
}()

/// Best effort on normal process exit: SIGKILLs every server still running and removes its directory.
///
/// Does not wait for the registry lock, so that exiting can never block on it.
private func killLiveChildrenAtExit() {
    killLiveChildren(waitForLock: false)
}

/// SIGKILLs every private server still running and removes its directory (at exit, or on a signal
/// through ``ProcessCleanup``).
///
/// - Parameter waitForLock: wait for the registry lock. A signal's cleanup must (it runs on a
///   Dispatch thread, not in a signal handler): if the signal arrives while a server is being
///   spawned, the spawn holds the lock until the new pid is registered, and not waiting would leave
///   that server running.
func killLiveChildren(waitForLock: Bool) {
    func killAll(_ children: inout [pid_t: String]) -> [pid_t: String] {
        let snapshot = children
        for pid in snapshot.keys {
            _ = kill(pid, SIGKILL)
        }
        children.removeAll()
        return snapshot
    }
    let children: [pid_t: String] = waitForLock
        ? liveChildren.withLock { killAll(&$0) }
        : liveChildren.withLockIfAvailable { killAll(&$0) } ?? [:]
    for directory in children.values {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A process started with `posix_spawn`, reaped by a dedicated thread so that it never stays a zombie.
///
/// The reaper first waits with `WNOWAIT` (the child stays a zombie, so its pid stays reserved),
/// then takes ``state``'s lock, reaps it and records the status. ``send(_:)`` signals under the same
/// lock only while no status is recorded, so a signal can never reach a recycled pid.
final class ChildProcess: Sendable {
    /// What is known about the child's termination, and who is waiting for it.
    private struct ExitState {
        /// The raw `waitpid` status once the child has been reaped (`-1` if someone else reaped it).
        var status: Int32?
        /// Tasks waiting for the exit, by waiter id; each is resumed exactly once.
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// The id handed to the next waiter.
        var nextWaiterID: UInt64 = 0
    }

    /// The child's process id.
    let pid: pid_t

    /// The exit status and the waiters, guarded by a lock.
    private let state = Mutex(ExitState())

    /// Wraps an already spawned child; ``spawn(executable:arguments:outputPath:directory:)`` starts the reaper.
    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Whether the child has exited and been reaped.
    var hasExited: Bool {
        state.withLock { $0.status != nil }
    }

    /// The raw wait status once the child has exited, `nil` while it runs.
    var exitStatus: Int32? {
        state.withLock { $0.status }
    }

    /// Sends `signal` to the child if it has not been reaped yet; returns whether it was sent.
    @discardableResult
    func send(_ signal: Int32) -> Bool {
        state.withLock { state in
            guard state.status == nil else { return false }
            return kill(pid, signal) == 0
        }
    }

    /// Suspends until the child has exited (no time limit).
    func waitForExit() async {
        _ = await wait(timeout: nil)
    }

    /// Suspends until the child has exited or `timeout` has passed; returns whether it exited.
    ///
    /// The time limit does not depend on task cancellation, so cleanup code can rely on it.
    func waitForExit(timeout: Duration) async -> Bool {
        await wait(timeout: timeout)
    }

    /// Registers a waiter, arming a timer that gives up after `timeout` when one is given.
    private func wait(timeout: Duration?) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let waiterID: UInt64? = state.withLock { state in
                if state.status != nil { return nil }
                let id = state.nextWaiterID
                state.nextWaiterID += 1
                state.waiters[id] = continuation
                return id
            }
            guard let waiterID else {
                continuation.resume(returning: true)
                return
            }
            if let timeout {
                let nanoseconds = max(0, timeout.components.seconds) * 1_000_000_000
                    + max(0, timeout.components.attoseconds / 1_000_000_000)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) {
                    let expired = self.state.withLock { $0.waiters.removeValue(forKey: waiterID) }
                    expired?.resume(returning: false)
                }
            }
        }
    }

    /// Runs on the reaper thread: blocks until the child exits, then reaps it and wakes all waiters.
    private func reap() {
        var info = siginfo_t()
        // Wait for the exit without reaping, so the pid stays reserved until we hold the lock.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        let waiters = state.withLock { state in
            _ = liveChildren.withLock { $0.removeValue(forKey: pid) }
            var status: Int32 = 0
            var result: pid_t
            repeat {
                result = waitpid(pid, &status, 0)
            } while result == -1 && errno == EINTR
            state.status = result == pid ? status : -1
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters {
            waiter.resume(returning: true)
        }
    }

    /// Starts `executable` with `arguments` (without `argv[0]`), stdin from `/dev/null` and
    /// stdout/stderr appended to `outputPath`, other descriptors closed, default signal handling;
    /// then starts its reaper thread.
    ///
    /// `directory` is removed by the `atexit` hook if the child is still running when the process exits.
    static func spawn(
        executable: String,
        arguments: [String],
        outputPath: String,
        directory: String
    ) throws(RedisServerProcessError) -> ChildProcess {
        _ = exitHookInstalled

        #if canImport(Darwin)
        var fileActions: posix_spawn_file_actions_t? = nil
        var attributes: posix_spawnattr_t? = nil
        #else
        var fileActions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&fileActions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&fileActions)
            posix_spawnattr_destroy(&attributes)
        }

        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

        // Unblock all signals and reset their handlers: an ignored SIGTERM or a blocked SIGPIPE
        // in this process must not be inherited by the server.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in 1..<32 where signal != SIGKILL && signal != SIGSTOP {
            sigaddset(&defaultSignals, Int32(signal))
        }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        #if canImport(Darwin)
        // Close every descriptor that the file actions do not set up explicitly.
        flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #else
        closeInheritedDescriptors(&fileActions)
        #endif
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        var environment: [UnsafeMutablePointer<CChar>?] =
            ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in environment { free(pointer) }
        }

        var pid: pid_t = 0
        // Register before the reaper can possibly remove the entry.
        let result = liveChildren.withLock { children -> Int32 in
            let result = posix_spawn(&pid, executable, &fileActions, &attributes, &argv, &environment)
            if result == 0 {
                children[pid] = directory
            }
            return result
        }
        guard result == 0 else {
            throw .startFailed(
                "posix_spawn(\(executable)) failed: \(String(cString: strerror(result)))",
                log: ""
            )
        }

        let child = ChildProcess(pid: pid)
        let reaper = Thread { child.reap() }
        reaper.name = "redis-server-reaper-\(pid)"
        reaper.stackSize = 512 * 1024
        reaper.start()
        return child
    }

    #if !canImport(Darwin)
    /// The C signature of glibc's `posix_spawn_file_actions_addclosefrom_np`.
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// Adds "close every descriptor from 3 on" to `fileActions`, so the server does not inherit this
    /// process' sockets (hiredis, for one, does not use `SOCK_CLOEXEC`).
    ///
    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+) is hidden behind `_GNU_SOURCE`, which
    /// Swift's Glibc module does not define, so it is looked up at run time; without it this does nothing.
    private static func closeInheritedDescriptors(_ fileActions: inout posix_spawn_file_actions_t) {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return }
        let addCloseFrom = unsafeBitCast(symbol, to: AddCloseFrom.self)
        _ = addCloseFrom(&fileActions, 3)
    }
    #endif

    /// Describes a raw wait status, e.g. "exited with status 1" or "was killed by signal 9".
    static func describe(status: Int32) -> String {
        if status == -1 {
            return "exited (status unknown: it was reaped elsewhere)"
        }
        let signal = status & 0x7f
        if signal == 0 {
            return "exited with status \((status >> 8) & 0xff)"
        }
        return "was killed by signal \(signal)"
    }
}
