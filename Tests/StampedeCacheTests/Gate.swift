import RedisTestSupport

/// The shared test gate, as compute closures for the cache.
typealias Gate = TestGate

extension TestGate {
    /// A compute closure that waits at the gate (or until cancelled), then returns `value`.
    func compute(_ value: String) -> @Sendable () async throws -> [UInt8] {
        { [self] in
            try await pass()
            return Array(value.utf8)
        }
    }

    /// A compute closure that waits at the gate (or until cancelled), then throws ``UpstreamDown``.
    func failing() -> @Sendable () async throws -> [UInt8] {
        { [self] in
            try await pass()
            throw UpstreamDown()
        }
    }
}
