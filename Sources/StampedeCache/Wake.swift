/// Why a waiting follower woke up.
package enum Wake: Sendable, Equatable {
    case notice(Notice)
    /// The subscriber reconnected: notices may have been missed, re-check now.
    case reconnected
    /// Nothing arrived within the wait; re-check (the fallback path).
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
}
