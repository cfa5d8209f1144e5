import Synchronization

/// In-process single flight: concurrent callers for the same key share one execution.
///
/// The first caller runs the operation inline, on its own task (no extra task or thread hop on the
/// fresh-hit path); later callers wait for its outcome. A waiting caller that is cancelled leaves at
/// once. If the leading caller's execution ends in cancellation, waiters retry on their own.
package final class FlightCoalescer<Outcome: Sendable>: Sendable {
    private struct Flight {
        var waiters: [UInt64: CheckedContinuation<Outcome, any Error>] = [:]
    }

    private struct State {
        var flights: [String: Flight] = [:]
        var nextID: UInt64 = 0
    }

    private struct FlightEnded: Error {}

    private let state = Mutex(State())

    package init() {}

    /// Runs `operation` for `key`, or joins the execution already running for it.
    /// - Parameter joined: called when this caller joined another caller's execution.
    package func run(
        key: String,
        joined: () -> Void = {},
        operation: () async throws -> Outcome
    ) async throws -> Outcome {
        while true {
            let leads = state.withLock { state -> Bool in
                if state.flights[key] == nil {
                    state.flights[key] = Flight()
                    return true
                }
                return false
            }
            if leads {
                let result: Result<Outcome, any Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                let waiters = state.withLock { $0.flights.removeValue(forKey: key)?.waiters ?? [:] }
                for waiter in waiters.values { waiter.resume(with: result) }
                return try result.get()
            }
            joined()
            do {
                return try await join(key: key)
            } catch is FlightEnded {
                continue
            } catch where !Task.isCancelled && Self.isCancellation(error) {
                continue  // the leader was cancelled, not us: run it ourselves
            }
        }
    }

    private func join(key: String) async throws -> Outcome {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
                let registered = state.withLock { state -> Bool in
                    guard state.flights[key] != nil else { return false }
                    state.flights[key]!.waiters[id] = continuation
                    return true
                }
                if !registered { continuation.resume(throwing: FlightEnded()) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.flights[key]?.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    static func isCancellation(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if let redis = error as? any RedisCancellationCheck { return redis.isCancellation }
        return false
    }
}

/// Lets the coalescer recognise cancellation errors of other layers.
package protocol RedisCancellationCheck {
    var isCancellation: Bool { get }
}

import RedisClient

extension RedisError: RedisCancellationCheck {
    package var isCancellation: Bool { code == .cancelled }
}

/// A counting semaphore for async tasks (bounds fail-open computations per process).
package actor ConcurrencyLimiter {
    private let limit: Int
    private var running = 0
    private var queue: [CheckedContinuation<Void, Never>] = []

    package init(limit: Int) { self.limit = limit }

    package func withPermit<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { queue.append($0) }
    }

    private func release() {
        if queue.isEmpty {
            running -= 1
        } else {
            queue.removeFirst().resume()
        }
    }
}

/// Resumes a continuation exactly once, from whichever side gets there first.
package final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    package init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    /// Returns whether this call resumed it.
    @discardableResult
    package func resume(with result: Result<T, any Error>) -> Bool {
        guard let continuation = continuation.withLock({ value in defer { value = nil }; return value }) else { return false }
        continuation.resume(with: result)
        return true
    }
}

package struct ComputeTimedOut: Error {}

/// Runs `operation` in its own task and returns its result, or throws ``ComputeTimedOut`` after
/// `timeout` **without waiting for it** (it is cancelled and abandoned: a hung upstream call cannot hold us).
package func withHardTimeout<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let once = ResumeOnce(continuation)
        let work = Task {
            do { once.resume(with: .success(try await operation())) } catch { once.resume(with: .failure(error)) }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if once.resume(with: .failure(ComputeTimedOut())) { work.cancel() }
        }
    }
}
