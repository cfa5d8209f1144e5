import Synchronization

/// Callbacks told when the client's idea of which node serves what changes: a cluster map that
/// differs from the one before (a reload or a `MOVED`), or Sentinel switching the primary.
/// Called on any thread, outside every lock; they must not block.
final class TopologyObservers: Sendable {
    private struct State {
        var next: UInt64 = 0
        var observers: [UInt64: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    /// Adds `body`; returns the token that removes it.
    func add(_ body: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.observers[state.next] = body
            return state.next
        }
    }

    func remove(_ token: UInt64) {
        _ = state.withLock { $0.observers.removeValue(forKey: token) }
    }

    func notify() {
        let observers = state.withLock { Array($0.observers.values) }
        for observer in observers { observer() }
    }
}
