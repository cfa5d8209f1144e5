public import Tracing

/// What a compute closure is computing, readable inside it (and in anything it calls) as
/// ``StampedeCache/computation``, e.g. to send the fence token to the upstream for tracing. It
/// rides in the task's `ServiceContext` (swift-distributed-tracing), next to the trace it
/// belongs to, under the key ``ComputationContextKey``.
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
    /// The computation the current task is running for the cache, if any (read from
    /// `ServiceContext.current`).
    public static var computation: ComputationContext? { ServiceContext.current?.stampedeComputation }

    /// Told, in the caller's task, each time a call made with this task-local set starts waiting
    /// for another worker's computation, or joins one running in this process (possibly several
    /// times for one computation, and again for a later one after a failure). A caller that
    /// streams uses it to read the partial output that computation appends to
    /// ``FollowedComputation/liveStreamKey``.
    @TaskLocal public static var followObserver: FollowObserver?
}

/// The `ServiceContext` key of the ``ComputationContext`` a compute closure runs with.
public enum ComputationContextKey: ServiceContextKey {
    /// The value stored.
    public typealias Value = ComputationContext
    /// Its name in the context's description.
    public static var nameOverride: String? { "stampede.computation" }
}

extension ServiceContext {
    /// The cache computation this context runs (see ``StampedeCache/computation``).
    public var stampedeComputation: ComputationContext? {
        get { self[ComputationContextKey.self] }
        set { self[ComputationContextKey.self] = newValue }
    }
}
