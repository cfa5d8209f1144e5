import Synchronization

/// Holds work (a computation, an upstream call) until the test opens it, so a test orders events
/// by waiting for them, never by sleeping.
package final class TestGate: Sendable {
    private struct State {
        var open = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
        var arrived = 0
        var cancelled = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// How many tasks reached the gate.
    package var arrived: Int { state.withLock { $0.arrived } }
    /// How many tasks were cancelled while waiting at it.
    package var cancelled: Int { state.withLock { $0.cancelled } }

    /// Lets every waiting task, and every later one, through.
    package func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the gate opens. A task cancelled while waiting leaves (counted in ``cancelled``)
    /// with `CancellationError`.
    package func pass() async throws {
        let id = state.withLock { state -> UInt64 in
            state.arrived += 1
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let through = state.withLock { state -> Bool in
                    if state.open { return true }
                    if Task.isCancelled {
                        state.cancelled += 1
                        return true
                    }
                    state.waiters[id] = continuation
                    return false
                }
                if through { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiters.removeValue(forKey: id) else { return nil }
                state.cancelled += 1
                return waiter
            }
            waiter?.resume()
        }
        try Task.checkCancellation()
    }
}
