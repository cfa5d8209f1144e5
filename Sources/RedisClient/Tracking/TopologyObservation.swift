/// A registration made by ``RedisClient/observeTopology(_:)``.
package struct TopologyObservation: Sendable, Hashable {
    let map: UInt64
    let sentinel: UInt64?
}
