import Synchronization

/// A cache's lifetime: open (possibly running), then closed for good.
final class Lifecycle: Sendable {
    private struct State {
        var runClaimed = false
        var startClaimed = false
        var backgroundRunning = false
    }

    private let state = Mutex(State())
    private let closed = CloseSignal()
    /// Mirrors `closed` for the check on every request (an atomic load, not a lock).
    private let closedFlag = Atomic<Bool>(false)

    /// Mirrors `State.backgroundRunning` for the check on every request.
    private let backgroundFlag = Atomic<Bool>(false)

    var isClosed: Bool { closedFlag.load(ordering: .acquiring) }

    /// Whether a loop (the cache's `run()` or a host's) sends hits and refreshes the generation.
    var backgroundRunning: Bool { backgroundFlag.load(ordering: .acquiring) && !isClosed }

    /// Returns false when the cache was closed or `run()` was claimed before.
    func claimRun() -> Bool {
        guard !closed.hasFired else { return false }
        return state.withLock { state in
            guard !state.runClaimed else { return false }
            state.runClaimed = true
            return true
        }
    }

    /// Whether ``claimStart()`` was called (the cache was started).
    var startClaimed: Bool { state.withLock { $0.startClaimed } }

    /// Returns true for the first call (which prepares the cache).
    func claimStart() -> Bool {
        state.withLock { state in
            defer { state.startClaimed = true }
            return !state.startClaimed
        }
    }

    func markBackgroundRunning() {
        state.withLock { $0.backgroundRunning = true }
        backgroundFlag.store(true, ordering: .releasing)
    }

    /// Closes; returns true for the call that closed it.
    func close() -> Bool {
        closedFlag.store(true, ordering: .releasing)
        return closed.fire()
    }

    /// Returns when the cache is closed, or when the calling task is cancelled.
    func waitUntilClosed() async { await closed.wait() }
}
