import Synchronization

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
