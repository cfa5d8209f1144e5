/// What a compute closure is computing, readable inside it (and in anything it calls) as
/// ``StampedeCache/computation``, e.g. to send the fence token to the upstream for tracing.
public struct ComputationContext: Sendable, Hashable {
    /// The cache's namespace.
    public var namespace: String
    /// The caller's key.
    public var key: String
    /// The fence token of the lock or lease this computation holds.
    public var fenceToken: Int64?
}

extension StampedeCache {
    /// The computation the current task is running for the cache, if any.
    @TaskLocal public static var computation: ComputationContext?
}
