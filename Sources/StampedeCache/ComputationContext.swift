/// What a compute closure is computing, readable inside it (and in anything it calls) as
/// ``StampedeCache/computation``, e.g. to send the fence token to the upstream for tracing.
public struct ComputationContext: Sendable, Hashable {
    /// The cache's namespace.
    public var namespace: String
    /// The caller's key.
    public var key: String
    /// The fence token of the lock or lease this computation holds.
    public var fenceToken: Int64?
    /// A Redis key (in the entry's hash slot, named after this fence token) where the computation
    /// may append its partial output as a Redis Stream for the followers waiting on it
    /// (``StampedeCache/followObserver``); `nil` for a computation nobody waits on.
    public var liveStreamKey: String?

    /// Creates a context.
    public init(namespace: String, key: String, fenceToken: Int64?, liveStreamKey: String? = nil) {
        self.namespace = namespace
        self.key = key
        self.fenceToken = fenceToken
        self.liveStreamKey = liveStreamKey
    }
}

extension StampedeCache {
    /// The computation the current task is running for the cache, if any.
    @TaskLocal public static var computation: ComputationContext?

    /// Told, in the caller's task, each time a call made with this task-local set starts waiting
    /// for another worker's computation, or joins one running in this process (possibly several
    /// times for one computation, and again for a later one after a failure). A caller that
    /// streams uses it to read the partial output that computation appends to
    /// ``FollowedComputation/liveStreamKey``.
    @TaskLocal public static var followObserver: FollowObserver?
}
