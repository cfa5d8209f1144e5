import Synchronization

/// Thrown by ``withHardTimeout(_:_:)`` when the operation ran out its time.
package struct ComputeTimedOut: Error {}

/// Runs `operation` in its own task and returns its result, or throws ``ComputeTimedOut`` after
/// `timeout` **without waiting for it** (it is cancelled and abandoned: a hung upstream call cannot
/// hold us).
///
/// When the calling task is cancelled, the operation is cancelled and this throws
/// `CancellationError` at once. The timer is cancelled as soon as the operation finishes, so no
/// sleeping task outlives the work.
package func withHardTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let handles = TimeoutHandles()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = ResumeOnce(continuation)
            let work = Task {
                do { once.resume(with: .success(try await operation())) } catch { once.resume(with: .failure(error)) }
                handles.finished()
            }
            let timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                if once.resume(with: .failure(ComputeTimedOut())) { work.cancel() }
            }
            handles.set(work: work, timer: timer)
            handles.onCancel = { once.resume(with: .failure(CancellationError())) }
        }
    } onCancel: {
        handles.cancel()
    }
}

/// The two tasks of one ``withHardTimeout(_:_:)`` call, so either side can stop the other.
private final class TimeoutHandles: Sendable {
    private struct State {
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var finished = false
        var cancelled = false
        var onCancel: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    var onCancel: (@Sendable () -> Void)? {
        get { state.withLock { $0.onCancel } }
        set {
            let runNow = state.withLock { state -> Bool in
                state.onCancel = newValue
                return state.cancelled
            }
            if runNow { cancel() }
        }
    }

    func set(work: Task<Void, Never>, timer: Task<Void, Never>) {
        let (finishedAlready, cancelledAlready) = state.withLock { state in
            state.work = work
            state.timer = timer
            return (state.finished, state.cancelled)
        }
        if finishedAlready || cancelledAlready { timer.cancel() }
        if cancelledAlready { work.cancel() }
    }

    /// The operation ended: the timer has nothing left to time.
    func finished() {
        let timer = state.withLock { state -> Task<Void, Never>? in
            state.finished = true
            return state.timer
        }
        timer?.cancel()
    }

    /// The caller was cancelled: stop both tasks and resume the caller.
    func cancel() {
        let (work, timer, onCancel) = state.withLock { state in
            state.cancelled = true
            return (state.work, state.timer, state.onCancel)
        }
        work?.cancel()
        timer?.cancel()
        onCancel?()
    }
}
