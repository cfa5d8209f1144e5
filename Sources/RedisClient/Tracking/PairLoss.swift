import Synchronization

/// The first loss of either connection of a pair: reported once, and the other one closed.
final class PairLoss: Sendable {
    private let lost = Atomic<Bool>(false)
    private let onLoss: @Sendable (RedisError) -> Void
    private let connections = Mutex<[RedisConnection]>([])

    init(onLoss: @escaping @Sendable (RedisError) -> Void) {
        self.onLoss = onLoss
    }

    var isLost: Bool { lost.load(ordering: .acquiring) }

    /// Adds a connection to close on loss (at once, if the pair is already lost).
    func watch(_ connection: RedisConnection) {
        connections.withLock { $0.append(connection) }
        if isLost { Task { await connection.close() } }
    }

    func report(_ error: RedisError) {
        guard !lost.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let connections = connections.withLock { $0 }
        for connection in connections where connection.isActive { Task { await connection.close() } }
        onLoss(error)
    }
}
