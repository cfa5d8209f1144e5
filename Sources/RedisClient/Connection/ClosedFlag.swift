import Synchronization

/// Whether a connection is finished, readable from any thread without a hop to its event loop.
package final class ClosedFlag: Sendable {
    private let value = Atomic<Bool>(false)

    package init() {}

    package func set() { value.store(true, ordering: .releasing) }

    package var isSet: Bool { value.load(ordering: .acquiring) }
}
