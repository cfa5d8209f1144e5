/// Runs a service's `run()` in a task, for tools and tests whose code is not shaped as a task group
/// (the `stampede` commands, benchmarks, chaos workers). Applications put caches in a
/// `ServiceGroup` instead.
///
/// Pair it with the service's `close()`: `await cache.close(); await running.finished()`.
package final class BackgroundRun: Sendable {
    private let task: Task<Void, Never>

    /// Starts `run` at once; an error it throws is handed to `onError`.
    package init(_ run: @escaping @Sendable () async throws -> Void, onError: @escaping @Sendable (any Error) -> Void = { _ in }) {
        task = Task {
            do { try await run() } catch { onError(error) }
        }
    }

    /// Returns when `run` has returned (after the service was closed or the run cancelled).
    package func finished() async { await task.value }

    /// Cancels the run (the service then cancels its own in-flight work and closes).
    package func cancel() { task.cancel() }
}
