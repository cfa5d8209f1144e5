import Synchronization

/// Fires once; ``wait()`` returns when it has fired or when the waiting task is cancelled.
package final class CloseSignal: Sendable {
    private struct State {
        var fired = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// Fires the signal (again is harmless); returns true for the call that fired it.
    @discardableResult
    package func fire() -> Bool {
        let (first, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
            guard !state.fired else { return (false, []) }
            state.fired = true
            defer { state.waiters = [:] }
            return (true, Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume() }
        return first
    }

    /// Whether it fired.
    package var hasFired: Bool { state.withLock { $0.fired } }

    package func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
