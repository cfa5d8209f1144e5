package import LocalServices

/// Runs `body` with a private Sentinel deployment (primary, replica, three sentinels), stopped afterwards.
package func withTestSentinel<T>(_ body: (LocalSentinel) async throws -> T) async throws -> T {
    let sentinel = try await LocalSentinel.start()
    do {
        let result = try await body(sentinel)
        await sentinel.stop()
        return result
    } catch {
        await sentinel.stop()
        throw error
    }
}
