import Synchronization

/// In-process single flight: concurrent callers for the same key share one execution.
///
/// The first caller (the leader) runs the operation inline, on its own task (no extra task or
/// thread hop on the fresh-hit path); later callers join and receive its outcome. A joining caller
/// that is cancelled leaves at once.
///
/// When the leader is cancelled, the callers that joined it are not failed:
/// - if the operation had handed its expensive part to a ``DetachedWork`` (via
///   ``Context/attach(_:)``), they go on waiting for that work, which keeps running;
/// - otherwise one of them runs the operation afresh and the others join it.
///
/// The leader itself gets `CancellationError`.
package final class FlightCoalescer<Outcome: Sendable>: Sendable {
    private struct Flight {
        var id: UInt64
        var waiters: [UInt64: CheckedContinuation<Outcome, any Error>] = [:]
        var detached: DetachedWork<Outcome>?
    }

    private struct State {
        var flights: [String: Flight] = [:]
        var nextID: UInt64 = 0

        mutating func makeID() -> UInt64 {
            nextID += 1
            return nextID
        }
    }

    /// Resumes a waiter whose flight ended without an outcome for it: run it again.
    private struct FlightEnded: Error {}

    /// Resumes a waiter whose leader left: wait for the detached work instead.
    private struct Rejoin: Error {
        let work: DetachedWork<Outcome>
    }

    /// What the leader's operation can do with its flight.
    package struct Context: Sendable {
        let coalescer: FlightCoalescer<Outcome>
        let key: String
        let flightID: UInt64

        /// Records that the rest of this flight is `work` (running in a task the caller does not
        /// own), so the callers who joined keep waiting for it if the leader is cancelled.
        package func attach(_ work: DetachedWork<Outcome>) {
            let attached = coalescer.state.withLock { state -> Bool in
                guard state.flights[key]?.id == flightID else { return false }
                state.flights[key]!.detached = work
                return true
            }
            if attached { work.holdForFlight() }
        }
    }

    private enum Registration { case registered, flightGone, cancelled }

    private let state = Mutex(State())
    /// Flights under way, readable without the lock: while it is 0 (the common case on a hot
    /// path of fresh hits) ``isRunning(_:)`` answers without hashing the key.
    private let running = Atomic<Int>(0)

    package init() {}

    /// The number of flights under way (tests).
    package var flightCount: Int { state.withLock { $0.flights.count } }

    /// Whether a flight for `key` is under way now (a caller of ``run(key:joined:operation:)``
    /// would join it).
    package func isRunning(_ key: String) -> Bool {
        if running.load(ordering: .relaxed) == 0 { return false }
        return state.withLock { $0.flights[key] != nil }
    }

    /// Runs `operation` for `key`, or joins the execution already running for it.
    /// - Parameter joined: called when this caller joined another caller's execution.
    /// - Throws: the operation's error, or `CancellationError` when this caller was cancelled.
    package func run(
        key: String,
        joined: () -> Void = {},
        operation: (Context) async throws -> Outcome
    ) async throws -> Outcome {
        while true {
            try Task.checkCancellation()
            let flightID: UInt64? = state.withLock { state in
                guard state.flights[key] == nil else { return nil }
                let id = state.makeID()
                state.flights[key] = Flight(id: id)
                running.add(1, ordering: .relaxed)
                return id
            }
            if let flightID {
                return try await lead(key: key, flightID: flightID, operation: operation)
            }
            joined()
            do {
                return try await join(key: key)
            } catch is FlightEnded {
                continue
            } catch let rejoin as Rejoin {
                return try await rejoin.work.wait(reserved: true)
            }
        }
    }

    private func lead(key: String, flightID: UInt64, operation: (Context) async throws -> Outcome) async throws -> Outcome {
        let result: Result<Outcome, any Error>
        do { result = .success(try await operation(Context(coalescer: self, key: key, flightID: flightID))) } catch { result = .failure(error) }
        let flight = state.withLock { state -> Flight? in
            guard state.flights[key]?.id == flightID else { return nil }
            running.subtract(1, ordering: .relaxed)
            return state.flights.removeValue(forKey: key)
        }
        let waiters = Array((flight?.waiters ?? [:]).values)
        let detached = flight?.detached
        if case .failure = result, Task.isCancelled {
            // The leader left. Those who joined it keep waiting for the detached work, or one of
            // them runs the operation afresh.
            if let detached {
                detached.releaseFlight(handingTo: waiters.count)
                for waiter in waiters { waiter.resume(throwing: Rejoin(work: detached)) }
            } else {
                for waiter in waiters { waiter.resume(throwing: FlightEnded()) }
            }
            throw CancellationError()
        }
        detached?.releaseFlight(handingTo: 0)
        for waiter in waiters { waiter.resume(with: result) }
        return try result.get()
    }

    private func join(key: String) async throws -> Outcome {
        let id = state.withLock { $0.makeID() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
                let registration = state.withLock { state -> Registration in
                    if Task.isCancelled { return .cancelled }
                    guard state.flights[key] != nil else { return .flightGone }
                    state.flights[key]!.waiters[id] = continuation
                    return .registered
                }
                switch registration {
                case .registered: break
                case .flightGone: continuation.resume(throwing: FlightEnded())
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.flights[key]?.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
