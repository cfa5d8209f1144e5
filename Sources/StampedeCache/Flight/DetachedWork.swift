import Synchronization

/// The expensive part of a flight (a computation and its commit), running in a task no caller
/// owns, so that the caller who started it can leave while the others keep waiting for it.
///
/// Whoever runs the work calls ``complete(_:)`` once. Callers ``wait(reserved:)`` for the result.
/// When every party that could still want the result has gone (the flight ended, every waiter was
/// cancelled) and the work was created with `cancelWhenAbandoned`, its cancel handler runs: a
/// value nobody will store or receive is not worth computing.
package final class DetachedWork<Outcome: Sendable>: Sendable {
    private struct State {
        var result: Result<Outcome, any Error>?
        var waiters: [UInt64: CheckedContinuation<Outcome, any Error>] = [:]
        /// Parties that may still wait: the flight (while it holds the work), reservations handed
        /// to callers who have not called `wait` yet, and active waiters.
        var holds = 0
        var nextID: UInt64 = 0
        var cancel: (@Sendable () -> Void)?
        var abandoned = false
    }

    private enum Step {
        case wait
        case result(Result<Outcome, any Error>)
        case cancelled((@Sendable () -> Void)?)
    }

    private let cancelWhenAbandoned: Bool
    private let state = Mutex(State())

    /// - Parameter cancelWhenAbandoned: cancel the work when nobody waits for it any more (use for
    ///   work whose result is not stored anywhere).
    package init(cancelWhenAbandoned: Bool) {
        self.cancelWhenAbandoned = cancelWhenAbandoned
    }

    /// Sets what cancels the work (typically `task.cancel()`); runs at once if it was abandoned already.
    package func onAbandon(_ cancel: @escaping @Sendable () -> Void) {
        let abandonedAlready = state.withLock { state -> Bool in
            if state.abandoned { return true }
            state.cancel = cancel
            return false
        }
        if abandonedAlready { cancel() }
    }

    /// Whether the work was abandoned (and cancelled) before it completed.
    package var wasAbandoned: Bool { state.withLock { $0.abandoned } }

    /// Delivers the work's result to every waiter (the first call wins).
    package func complete(_ result: Result<Outcome, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Outcome, any Error>] in
            guard state.result == nil else { return [] }
            state.result = result
            state.cancel = nil
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    func holdForFlight() {
        state.withLock { $0.holds += 1 }
    }

    /// The flight ended; `count` callers were told to wait for this work instead.
    func releaseFlight(handingTo count: Int) {
        let cancel = state.withLock { state -> (@Sendable () -> Void)? in
            state.holds += count - 1
            return abandonIfUnwanted(&state)
        }
        cancel?()
    }

    /// Waits for the result. `reserved`: this caller was handed the work by its flight.
    /// - Throws: the work's error, or `CancellationError` when this caller is cancelled (the work
    ///   goes on unless nobody else wants it).
    package func wait(reserved: Bool = false) async throws -> Outcome {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            if !reserved { state.holds += 1 }
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
                let step = state.withLock { state -> Step in
                    if let result = state.result { state.holds -= 1; return .result(result) }
                    if Task.isCancelled {
                        state.holds -= 1
                        return .cancelled(abandonIfUnwanted(&state))
                    }
                    state.waiters[id] = continuation
                    return .wait
                }
                switch step {
                case .wait: break
                case .result(let result): continuation.resume(with: result)
                case .cancelled(let cancel):
                    cancel?()
                    continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let (waiter, cancel) = state.withLock { state -> (CheckedContinuation<Outcome, any Error>?, (@Sendable () -> Void)?) in
                guard let waiter = state.waiters.removeValue(forKey: id) else { return (nil, nil) }
                state.holds -= 1
                return (waiter, abandonIfUnwanted(&state))
            }
            cancel?()
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func abandonIfUnwanted(_ state: inout State) -> (@Sendable () -> Void)? {
        guard cancelWhenAbandoned, state.holds <= 0, state.result == nil, !state.abandoned else { return nil }
        state.abandoned = true
        defer { state.cancel = nil }
        return state.cancel
    }
}
