import Logging
import RedisClient
import Synchronization

/// One reader per live stream in this process, shared by every caller following it: however many
/// callers here wait on another worker's streamed computation, its Redis Stream is read once (one
/// `XREAD BLOCK` connection, on the node serving its slot) and each piece is handed to all of them.
/// A caller that starts following late first receives the pieces read so far, in order.
final class LiveStreamReaders: Sendable {
    private struct Reader {
        var pieces: [ChatDelta] = []
        var subscribers: [UInt64: @Sendable (ChatDelta) -> Void] = [:]
        var task: Task<Void, Never>?
        /// The reading ended (end marker, or an error): later subscribers get what was read.
        var finished = false
    }

    private struct State {
        var readers: [String: Reader] = [:]
        var nextID: UInt64 = 0
    }

    private let redis: RedisClient
    private let logger: Logger
    private let state = Mutex(State())

    init(redis: RedisClient, logger: Logger) {
        self.redis = redis
        self.logger = logger
    }

    /// Hands every piece of the stream at `key` to `deliver`, in order from its start (those read
    /// already at once); returns the registration for ``unsubscribe(_:_:)``. Pieces are handed
    /// on while a lock is held: `deliver` must be quick and must not call back into this type.
    func subscribe(_ key: String, _ deliver: @escaping @Sendable (ChatDelta) -> Void) -> UInt64 {
        let (id, start) = state.withLock { state -> (UInt64, Bool) in
            state.nextID += 1
            var reader = state.readers[key] ?? Reader()
            for piece in reader.pieces { deliver(piece) }
            reader.subscribers[state.nextID] = deliver
            let start = reader.task == nil && !reader.finished
            state.readers[key] = reader
            return (state.nextID, start)
        }
        if start {
            let task = Task { await self.read(key) }
            let orphaned = state.withLock { state -> Bool in
                guard state.readers[key] != nil else { return true }
                state.readers[key]?.task = task
                return false
            }
            if orphaned { task.cancel() }
        }
        return id
    }

    /// Stops handing pieces to registration `id`; the last caller to leave stops the reading.
    /// No piece is handed to it after this returns.
    func unsubscribe(_ key: String, _ id: UInt64) {
        let idle = state.withLock { state -> Task<Void, Never>? in
            guard var reader = state.readers[key] else { return nil }
            reader.subscribers[id] = nil
            guard reader.subscribers.isEmpty else {
                state.readers[key] = reader
                return nil
            }
            state.readers[key] = nil
            return reader.task
        }
        idle?.cancel()
    }

    /// How many streams are being read (for tests).
    var count: Int { state.withLock { $0.readers.count } }

    private func read(_ key: String) async {
        defer {
            state.withLock { state in
                guard var reader = state.readers[key], !reader.subscribers.isEmpty else {
                    state.readers[key] = nil
                    return
                }
                reader.task = nil
                reader.finished = true
                state.readers[key] = reader
            }
        }
        do {
            try await redis.withConnection(routedBy: key) { connection in
                var lastID = "0"
                while !Task.isCancelled {
                    // BLOCK 0 waits for the next piece however long the computation takes; the last
                    // subscriber leaving cancels this task, which closes the connection.
                    let reply = try await connection.send(
                        RedisCommand("XREAD", "COUNT", "512", "BLOCK", "0", "STREAMS", RedisArgument(key), RedisArgument(lastID)),
                        timeout: .seconds(86_400)
                    )
                    for entry in Self.entries(reply) {
                        lastID = entry.id
                        if entry.fields["e"] != nil { return }
                        guard let piece = entry.fields["d"].map(ChatDelta.content) ?? entry.fields["r"].map(ChatDelta.reasoning) else { continue }
                        let live = state.withLock { state -> Bool in
                            guard var reader = state.readers[key], !reader.subscribers.isEmpty else { return false }
                            reader.pieces.append(piece)
                            for deliver in reader.subscribers.values { deliver(piece) }
                            state.readers[key] = reader
                            return true
                        }
                        guard live else { return }
                    }
                }
            }
        } catch {
            if !Task.isCancelled { logger.debug("stopped reading another worker's live stream", metadata: ["error": "\(error)"]) }
        }
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
