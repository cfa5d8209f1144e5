import Synchronization

/// Set once the embedding server's process has exited.
final class ExitedFlag: Sendable {
    let value = Atomic<Bool>(false)
}
