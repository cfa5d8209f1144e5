import Logging
import RedisClient
import StampedeCache
import Synchronization

/// The follower's side of live streaming: when a streaming caller starts waiting for another
/// worker's computation (``StampedeCache/followObserver``), reads that computation's Redis Stream
/// from its start with `XREAD BLOCK` on a leased connection and hands each piece on as it arrives.
///
/// ``stop()`` ends the reading (cancelling a blocked `XREAD` closes its leased connection) and
/// returns the answer and reasoning text handed on, so the caller can send the rest of the final
/// answer without repeating any of it. On a cluster the connection goes to the primary serving the
/// stream's slot (``RedisClient/withConnection(routedBy:isolation:_:)``); if the slot moves
/// meanwhile, reading stops at the first error and the rest of the answer arrives whole.
final class LiveStreamFollower: Sendable {
    private struct State {
        var followedToken: Int64?
        var reader: Task<Void, Never>?
        var delivered = Delivered()
        var stopped = false
    }

    private let redis: RedisClient
    private let logger: Logger
    /// The text handed on so far, by kind.
    struct Delivered: Sendable, Equatable {
        var content = ""
        var reasoning = ""
        var isEmpty: Bool { content.isEmpty && reasoning.isEmpty }
    }

    private let onPiece: @Sendable (ChatDelta) -> Void
    private let state = Mutex(State())

    init(redis: RedisClient, logger: Logger, onPiece: @escaping @Sendable (ChatDelta) -> Void) {
        self.redis = redis
        self.logger = logger
        self.onPiece = onPiece
    }

    /// The observer to install while the call runs: starts reading the first computation waited for.
    var observer: FollowObserver {
        FollowObserver { [weak self] followed in self?.follow(followed) }
    }

    private func follow(_ followed: FollowedComputation) {
        state.withLock { state in
            // One stream per call: after a failure and a retry, a new computation's text could not
            // follow the pieces already sent; the rest then arrives with the final answer.
            guard !state.stopped, state.followedToken == nil else { return }
            state.followedToken = followed.fenceToken
            state.reader = Task { await self.read(followed.liveStreamKey) }
        }
    }

    private func read(_ key: String) async {
        do {
            try await redis.withConnection(routedBy: key) { connection in
                var lastID = "0"
                while !Task.isCancelled {
                    // BLOCK 0 waits for the next piece however long the computation takes; the
                    // caller's stop() (cancellation) closes the leased connection.
                    let reply = try await connection.send(
                        RedisCommand("XREAD", "COUNT", "512", "BLOCK", "0", "STREAMS", RedisArgument(key), RedisArgument(lastID)),
                        timeout: .seconds(86_400)
                    )
                    for entry in Self.entries(reply) {
                        lastID = entry.id
                        let piece: ChatDelta? = entry.fields["d"].map(ChatDelta.content) ?? entry.fields["r"].map(ChatDelta.reasoning)
                        if let piece {
                            let keep = state.withLock { state -> Bool in
                                guard !state.stopped else { return false }
                                switch piece {
                                case .content(let text): state.delivered.content += text
                                case .reasoning(let text): state.delivered.reasoning += text
                                }
                                return true
                            }
                            guard keep else { return }
                            onPiece(piece)
                        } else if entry.fields["e"] != nil {
                            return
                        }
                    }
                }
            }
        } catch {
            if !Task.isCancelled { logger.debug("stopped reading another worker's live stream", metadata: ["error": "\(error)"]) }
        }
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

    /// Stops reading; returns the text handed on so far.
    func stop() async -> Delivered {
        let reader = state.withLock { state -> Task<Void, Never>? in
            state.stopped = true
            return state.reader
        }
        reader?.cancel()
        await reader?.value
        return state.withLock { $0.delivered }
    }

    /// The entries of an `XREAD` reply for one stream: id and fields.
    static func entries(_ reply: RESPValue) -> [(id: String, fields: [String: String])] {
        guard let streams = reply.array, let stream = streams.first?.array, stream.count == 2, let items = stream[1].array else { return [] }
        var entries: [(id: String, fields: [String: String])] = []
        for item in items {
            guard let parts = item.array, parts.count == 2, let id = parts[0].string, let values = parts[1].array else { continue }
            var fields: [String: String] = [:]
            var index = 0
            while index + 1 < values.count {
                if let name = values[index].string, let value = values[index + 1].string { fields[name] = value }
                index += 2
            }
            entries.append((id, fields))
        }
        return entries
    }
}
