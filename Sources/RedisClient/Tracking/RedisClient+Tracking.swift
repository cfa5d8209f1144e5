/// Server-assisted client-side caching: the pieces a near-cache needs from the client.
extension RedisClient {
    /// Opens a ``TrackedConnectionPair`` on the node that serves `key` (on a cluster, the primary
    /// of its hash slot; through Sentinel, the primary; else the configured endpoint).
    package func openTrackedPair(
        routedBy key: String,
        onInvalidation: @escaping @Sendable (Invalidation) -> Void,
        onLoss: @escaping @Sendable (RedisError) -> Void
    ) async throws(RedisError) -> TrackedConnectionPair {
        var node = configuration
        node.endpoint = try await nodeEndpoint(routedBy: key)
        return try await TrackedConnectionPair.open(configuration: node, eventLoop: eventLoop, logger: logger, onInvalidation: onInvalidation, onLoss: onLoss)
    }

    /// The node that serves `key` now (loading the cluster map or asking the sentinels if needed).
    package func nodeEndpoint(routedBy key: String) async throws(RedisError) -> RedisConfiguration.Endpoint {
        guard !closed.load(ordering: .relaxed) else { throw RedisError(code: .shutdown, message: "the client was closed") }
        if let sentinel { return try await sentinel.primary() }
        if try await isCluster() { return try await router.endpoint(forSlot: HashSlot.of(key)) }
        return configuration.endpoint
    }

    /// Calls `body` (on any thread, without blocking) whenever which node serves what may have
    /// changed: a different cluster map, a `MOVED`, or a Sentinel `+switch-master`.
    /// - Returns: the observation, to pass to ``stopObservingTopology(_:)``.
    package func observeTopology(_ body: @escaping @Sendable () -> Void) -> TopologyObservation {
        TopologyObservation(map: router.mapObservers.add(body), sentinel: sentinel?.switchObservers.add(body))
    }

    /// Ends an observation started with ``observeTopology(_:)``.
    package func stopObservingTopology(_ observation: TopologyObservation) {
        router.mapObservers.remove(observation.map)
        if let token = observation.sentinel { sentinel?.switchObservers.remove(token) }
    }
}
