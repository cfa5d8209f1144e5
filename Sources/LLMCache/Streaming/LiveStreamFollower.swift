import StampedeCache
import Synchronization

/// The follower's side of live streaming: when a streaming caller starts waiting for another
/// worker's computation (``StampedeCache/followObserver``), follows that computation's Redis
/// Stream from its start through the process's shared reader (``LiveStreamReaders``: one `XREAD
/// BLOCK` per stream, however many callers here follow it) and hands each piece on as it arrives.
///
/// ``stop()`` ends the reading (cancelling a blocked `XREAD` closes its leased connection) and
/// returns the answer and reasoning text handed on, so the caller can send the rest of the final
/// answer without repeating any of it. On a cluster the connection goes to the primary serving the
/// stream's slot (``RedisClient/withConnection(routedBy:isolation:_:)``); if the slot moves
/// meanwhile, reading stops at the first error and the rest of the answer arrives whole.
final class LiveStreamFollower: Sendable {
    private struct State {
        var followedToken: Int64?
        var subscription: (key: String, id: UInt64)?
        var delivered = Delivered()
        var stopped = false
    }

    /// The text handed on so far, by kind.
    struct Delivered: Sendable, Equatable {
        var content = ""
        var reasoning = ""
        var isEmpty: Bool { content.isEmpty && reasoning.isEmpty }
    }

    private let readers: LiveStreamReaders
    private let onPiece: @Sendable (ChatDelta) -> Void
    private let state = Mutex(State())

    init(readers: LiveStreamReaders, onPiece: @escaping @Sendable (ChatDelta) -> Void) {
        self.readers = readers
        self.onPiece = onPiece
    }

    /// The observer to install while the call runs: starts reading the first computation waited for.
    var observer: FollowObserver {
        FollowObserver { [weak self] followed in self?.follow(followed) }
    }

    private func follow(_ followed: FollowedComputation) {
        // One stream per call: after a failure and a retry, a new computation's text could not
        // follow the pieces already sent; the rest then arrives with the final answer.
        let start = state.withLock { state -> Bool in
            guard !state.stopped, state.followedToken == nil else { return false }
            state.followedToken = followed.fenceToken
            return true
        }
        guard start else { return }
        let key = followed.liveStreamKey
        let id = readers.subscribe(key) { [weak self] piece in self?.receive(piece) }
        let late = state.withLock { state -> Bool in
            guard !state.stopped else { return true }
            state.subscription = (key, id)
            return false
        }
        if late { readers.unsubscribe(key, id) }
    }

    private func receive(_ piece: ChatDelta) {
        let keep = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            switch piece {
            case .content(let text): state.delivered.content += text
            case .reasoning(let text): state.delivered.reasoning += text
            }
            return true
        }
        if keep { onPiece(piece) }
    }

    /// Called when this call's own upstream request starts streaming (it took over the lock): if
    /// nothing was handed on from another computation, reading stops for good and the caller's
    /// own pieces may be sent (returns true); otherwise the own pieces must be held back (false),
    /// so two answers are never interleaved.
    func yieldToOwnStream() -> Bool {
        state.withLock { state in
            guard state.delivered.isEmpty else { return false }
            state.stopped = true
            return true
        }
    }

    /// Stops reading; returns the text handed on so far (nothing is handed on after this returns).
    func stop() async -> Delivered {
        let subscription = state.withLock { state -> (key: String, id: UInt64)? in
            state.stopped = true
            defer { state.subscription = nil }
            return state.subscription
        }
        if let subscription { readers.unsubscribe(subscription.key, subscription.id) }
        return state.withLock { $0.delivered }
    }
}
