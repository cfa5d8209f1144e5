import Synchronization

/// A gate a compute closure waits at until the test opens it (no sleeps to order events).
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let arrivals = Atomic<Int>(0)
    private let cancellations = Atomic<Int>(0)

    /// How many computations reached the gate.
    var arrived: Int { arrivals.load(ordering: .relaxed) }
    /// How many computations were cancelled while waiting at the gate.
    var cancelled: Int { cancellations.load(ordering: .relaxed) }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// A compute closure that waits at the gate (or until cancelled), then throws ``UpstreamDown``.
    func failing() -> @Sendable () async throws -> [UInt8] {
        let wait = compute("")
        return {
            _ = try await wait()
            throw UpstreamDown()
        }
    }

    /// A compute closure that waits at the gate (or until cancelled), then returns `value`.
    func compute(_ value: String) -> @Sendable () async throws -> [UInt8] {
        { [self] in
            arrivals.add(1, ordering: .relaxed)
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let isOpen = state.withLock { state in
                        if !state.open { state.waiters.append(continuation) }
                        return state.open
                    }
                    if isOpen { continuation.resume() }
                }
            } onCancel: {
                self.cancellations.add(1, ordering: .relaxed)
                self.open()
            }
            try Task.checkCancellation()
            return Array(value.utf8)
        }
    }
}
