import Synchronization

/// The computations running in this process that callers may follow live: a caller that joins an
/// in-process flight (instead of waiting on another worker) learns through this which computation
/// it joined, so ``StampedeCache/followObserver`` works for it too.
package final class LiveAnnouncements: Sendable {
    private struct Entry {
        var announced: FollowedComputation?
        var waiting: [UInt64: FollowObserver] = [:]
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// A computation of entry `id` started: tells the callers waiting for one.
    func announce(_ id: String, _ followed: FollowedComputation) {
        let observers = state.withLock { state -> [FollowObserver] in
            var entry = state.entries[id] ?? Entry()
            entry.announced = followed
            defer { state.entries[id] = entry }
            return Array(entry.waiting.values)
        }
        for observer in observers { observer(followed) }
    }

    /// The computation of entry `id` ended (with `token`: only if it is still the one announced).
    func withdraw(_ id: String, token: Int64? = nil) {
        state.withLock { state in
            // A follower flight withdraws only its own announcement, never a newer computation's.
            if let token, let announced = state.entries[id]?.announced, announced.fenceToken != token { return }
            state.entries[id]?.announced = nil
            if state.entries[id]?.waiting.isEmpty == true { state.entries[id] = nil }
        }
    }

    /// Calls `observer` with entry `id`'s computation, now if it is announced, else when it is.
    /// - Returns: a registration to ``forget(_:_:)`` when the caller is done.
    func observe(_ id: String, _ observer: FollowObserver) -> UInt64 {
        let (registration, announced) = state.withLock { state -> (UInt64, FollowedComputation?) in
            state.nextID += 1
            state.entries[id, default: Entry()].waiting[state.nextID] = observer
            return (state.nextID, state.entries[id]?.announced)
        }
        if let announced { observer(announced) }
        return registration
    }

    /// Removes a registration made by ``observe(_:_:)``.
    func forget(_ id: String, _ registration: UInt64) {
        state.withLock { state in
            state.entries[id]?.waiting[registration] = nil
            if let entry = state.entries[id], entry.waiting.isEmpty, entry.announced == nil { state.entries[id] = nil }
        }
    }

    /// Entries tracked (tests: nothing is left behind).
    package var count: Int { state.withLock { $0.entries.count } }
}
