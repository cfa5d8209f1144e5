/// Another worker's computation that a caller has started waiting for (see
/// ``StampedeCache/followObserver``).
public struct FollowedComputation: Sendable, Hashable {
    /// The cache's namespace.
    public var namespace: String
    /// The caller's key.
    public var key: String
    /// The fence token of the computation waited for.
    public var fenceToken: Int64
    /// Where that computation appends its partial output, if it does (``ComputationContext/liveStreamKey``).
    public var liveStreamKey: String
}
