import Synchronization

/// Tasks the cache owns (computations, refreshes): they outlive their callers' cancellation;
/// `close()` waits for them, and `run()` cancels them when it is cancelled.
final class BackgroundTasks: Sendable {
    private struct Tracked: Sendable {
        var wait: @Sendable () async -> Void
        var cancel: @Sendable () -> Void
    }

    private struct State {
        var running: [UInt64: Tracked] = [:]
        var finishedEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Starts `operation` in a new task that removes itself from the set when it ends.
    func spawn<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) -> Task<T, any Error> {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        let task = Task {
            defer {
                self.state.withLock { state in
                    if state.running.removeValue(forKey: id) == nil { state.finishedEarly.insert(id) }
                }
            }
            return try await operation()
        }
        state.withLock { state in
            if state.finishedEarly.remove(id) == nil {
                state.running[id] = Tracked(wait: { _ = try? await task.value }, cancel: { task.cancel() })
            }
        }
        return task
    }

    /// Tasks still running.
    var count: Int { state.withLock { $0.running.count } }

    /// Returns when every task (including ones started meanwhile) has ended.
    func waitForAll() async {
        while true {
            let pending = state.withLock { Array($0.running.values) }
            if pending.isEmpty { return }
            for task in pending { await task.wait() }
        }
    }

    /// Cancels every running task.
    func cancelAll() {
        for task in state.withLock({ Array($0.running.values) }) { task.cancel() }
    }
}
