/// An error a computation throws that says whether running the computation again can succeed.
///
/// When a computation fails, the callers that waited for it get one fresh single-flight round
/// (``CachePolicy/followerRetries``, one computation fleet-wide per round) — unless the error
/// conforms to this protocol and ``retryCanSucceed`` is `false` (for example an HTTP 400 or 401 from
/// the upstream): then every waiting caller receives the failure at once, in every process.
/// Errors that don't conform count as retryable; a computation that ran out
/// ``CachePolicy/computeTimeout`` is never retried by the callers that waited for it.
public protocol RetryClassifiedError: Error {
    /// `false` when a retry cannot fix this failure.
    var retryCanSucceed: Bool { get }
}
