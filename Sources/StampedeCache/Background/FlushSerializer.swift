import Synchronization

/// Runs hit flushes one at a time, in call order: a flush that starts while another is under way
/// waits for it, so "flushed" means every hit counted before the call is in Redis. No task is created.
final class FlushSerializer: Sendable {
    private struct State {
        var busy = false
        var queue: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func run(_ body: () async -> Void) async {
        let mustWait = state.withLock { state -> Bool in
            if state.busy { return true }
            state.busy = true
            return false
        }
        if mustWait {
            // The flush under way hands over to us when it ends (no cancellation: a flush is short and bounded by the command timeout).
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let handedOver = state.withLock { state -> Bool in
                    if !state.busy {
                        state.busy = true
                        return true
                    }
                    state.queue.append(continuation)
                    return false
                }
                if handedOver { continuation.resume() }
            }
        }
        await body()
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.queue.isEmpty {
                state.busy = false
                return nil
            }
            return state.queue.removeFirst()  // stays busy: ownership passes on
        }
        next?.resume()
    }
}
