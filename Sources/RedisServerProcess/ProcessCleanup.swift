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

/// What a command-line process leaves behind if it is interrupted: the private redis-servers it
/// started (kept by ``ChildProcess``), other child processes it registered (chaos workers) and
/// temporary directories. ``installSignalHandlers()`` makes SIGINT, SIGTERM and SIGHUP clean all of
/// them up before the process ends with the signal's usual status, as a normal exit already does.
package enum ProcessCleanup {
    private struct Registry {
        var pids: Set<Int32> = []
        var directories: Set<String> = []
    }

    private static let registry = Mutex(Registry())
    private static let terminating = Atomic<Bool>(false)
    private static let sources = Mutex<[any DispatchSourceSignal]>([])

    /// Kill `pid` (SIGKILL) if the process is interrupted before ``unregister(pid:)``.
    package static func register(pid: Int32) { registry.withLock { _ = $0.pids.insert(pid) } }
    /// The process ended normally; forget it.
    package static func unregister(pid: Int32) { registry.withLock { _ = $0.pids.remove(pid) } }
    /// Remove `directory` if the process is interrupted before ``unregister(directory:)``.
    package static func register(directory: String) { registry.withLock { _ = $0.directories.insert(directory) } }
    /// The directory was cleaned up normally; forget it.
    package static func unregister(directory: String) { registry.withLock { _ = $0.directories.remove(directory) } }

    /// Handles SIGINT, SIGTERM and SIGHUP: kills every registered and every live private
    /// redis-server child, removes their directories, then ends the process with that signal.
    /// Idempotent. (SIGKILL cannot be handled: chaos workers watch their parent for that case.)
    package static func installSignalHandlers() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler {
                    terminating.store(true, ordering: .sequentiallyConsistent)
                    cleanUpNow()
                    // End with the signal's own status. kill(getpid()) rather than raise(): the
                    // handler runs on a dispatch thread that may block signals; a process-directed
                    // signal goes to a thread that does not. _exit is the fallback.
                    signal(signalNumber, SIG_DFL)
                    kill(getpid(), signalNumber)
                    usleep(200_000)
                    _exit(128 + signalNumber)
                }
                source.resume()
                sources.append(source)
            }
        }
    }

    /// Called where the process would end on its own (the command returned or failed): while a
    /// signal's cleanup is under way, waits for it to end the process with the signal's status
    /// instead of racing it with an exit status of its own (the killed server makes commands fail).
    package static func waitIfTerminating() {
        guard terminating.load(ordering: .sequentiallyConsistent) else { return }
        while true { sleep(1) }
    }

    /// Kills what was registered (and every live private redis-server) and removes the directories.
    package static func cleanUpNow() {
        let registered = registry.withLock { registry in
            defer { registry = Registry() }
            return registry
        }
        for pid in registered.pids { _ = kill(pid, SIGKILL) }
        killLiveChildren(waitForLock: true)
        for directory in registered.directories { try? FileManager.default.removeItem(atPath: directory) }
    }
}
