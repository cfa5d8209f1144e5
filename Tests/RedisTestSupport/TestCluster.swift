package import LocalServices

/// Runs `body` with a private loopback Redis Cluster (default: 3 primaries, 1 replica each),
/// stopped afterwards.
package func withTestCluster<T>(
    primaries: Int = 3,
    replicasPerPrimary: Int = 1,
    _ body: (LocalCluster) async throws -> T
) async throws -> T {
    let cluster = try await LocalCluster.start(primaries: primaries, replicasPerPrimary: replicasPerPrimary)
    do {
        let result = try await body(cluster)
        await cluster.stop()
        return result
    } catch {
        await cluster.stop()
        throw error
    }
}
