/// Receives the computations a caller follows (see ``StampedeCache/followObserver``).
public final class FollowObserver: Sendable {
    private let body: @Sendable (FollowedComputation) -> Void

    /// An observer calling `body`, which must not block.
    public init(_ body: @escaping @Sendable (FollowedComputation) -> Void) {
        self.body = body
    }

    /// Tells the observer about `computation`.
    public func callAsFunction(_ computation: FollowedComputation) {
        body(computation)
    }
}
