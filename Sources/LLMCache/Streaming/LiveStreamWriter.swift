import Logging
import RedisClient

/// The leader's side of live streaming: appends each piece of the upstream's answer to the
/// computation's Redis Stream (`XADD`, in order, off the caller's path), then an end marker, so
/// followers in any process read the answer while it is being written.
///
/// Entries are `d <answer piece>` or `r <reasoning piece>`, then `e done` or `e error m <message>`. The stream is bounded
/// (`MAXLEN ~ 10000` pieces) and expires `lifetime` after the last write; its key carries the
/// computation's fence token, so a zombie never writes into a newer computation's stream.
final class LiveStreamWriter: Sendable {
    private enum Item {
        case piece(ChatDelta)
        case end(error: String?)
    }

    private let continuation: AsyncStream<Item>.Continuation
    private let drained: Task<Void, Never>

    init(redis: RedisClient, key: String, lifetime: Duration, logger: Logger) {
        let (items, continuation) = AsyncStream<Item>.makeStream()
        self.continuation = continuation
        let ttl = RedisArgument(max(1_000, lifetime.wholeMillisecondsClamped))
        drained = Task {
            var first = true
            for await item in items {
                var commands: [RedisCommand] = []
                switch item {
                case .piece(let delta):
                    let field: RedisArgument = switch delta {
                    case .content: "d"
                    case .reasoning: "r"
                    }
                    commands.append(RedisCommand("XADD", RedisArgument(key), "MAXLEN", "~", "10000", "*", field, RedisArgument(delta.text)))
                case .end(let error):
                    if let error {
                        commands.append(RedisCommand("XADD", RedisArgument(key), "*", "e", "error", "m", RedisArgument(error)))
                    } else {
                        commands.append(RedisCommand("XADD", RedisArgument(key), "*", "e", "done"))
                    }
                    commands.append(RedisCommand("PEXPIRE", RedisArgument(key), ttl))
                }
                if first {
                    commands.append(RedisCommand("PEXPIRE", RedisArgument(key), ttl))
                    first = false
                }
                do {
                    _ = try await redis.send(pipeline: commands)
                } catch {
                    // Followers then get the answer whole, when it is committed: nothing is lost.
                    logger.debug("could not append to the live stream", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Queues a piece (never blocks the caller).
    func append(_ piece: ChatDelta) {
        continuation.yield(.piece(piece))
    }

    /// Queues the end marker and waits until everything queued was written (or failed).
    func finish(error: String?) async {
        continuation.yield(.end(error: error))
        continuation.finish()
        await drained.value
    }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int64`.
    fileprivate var wholeMillisecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (millis, overflow) = seconds.multipliedReportingOverflow(by: 1_000)
        return overflow ? Int64.max : millis + attoseconds / 1_000_000_000_000_000
    }
}
