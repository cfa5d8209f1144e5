package import Logging
package import NIOCore
import Synchronization

/// Two connections to one Redis node for server-assisted client-side caching (`CLIENT TRACKING`,
/// RESP2 redirect mode): a *reader* whose reads the server tracks, and a *listener* subscribed to
/// `__redis__:invalidate` that receives, for every tracked key another client changes, an
/// invalidation message.
///
/// Default tracking mode, not `BCAST`: the server remembers which keys this reader read and sends
/// an invalidation only for those, once, so the messages a process receives are proportional to
/// the keys it holds. `BCAST` would send every write under a prefix to every process, including
/// the lock, fence, hot-counter and live-stream keys a busy namespace writes all the time.
///
/// The pair lives and dies as one: when either connection closes, fails or times out, `onLoss` is
/// called once and the pair is closed. A reader whose listener died keeps its tracking but its
/// redirect is broken (`CLIENT LIST` flag `R`) and in RESP2 nobody is told, so the only safe
/// response to any loss is the standard contract: drop everything read through the pair, open a
/// new one.
package final class TrackedConnectionPair: Sendable {
    /// The node both connections are connected to.
    package let endpoint: RedisConfiguration.Endpoint
    /// The listener's `CLIENT ID`: the reader's invalidations are redirected to it.
    package let listenerID: Int64
    private let reader: RedisConnection
    private let listener: RedisConnection
    private let loss: PairLoss
    private let commandTimeout: Duration

    /// The channel Redis publishes invalidations on in RESP2 redirect mode.
    package static let invalidationChannel = "__redis__:invalidate"

    private init(endpoint: RedisConfiguration.Endpoint, listenerID: Int64, reader: RedisConnection, listener: RedisConnection, loss: PairLoss, commandTimeout: Duration) {
        self.endpoint = endpoint
        self.listenerID = listenerID
        self.reader = reader
        self.listener = listener
        self.loss = loss
        self.commandTimeout = commandTimeout
    }

    /// Opens the listener (`CLIENT ID`, `SUBSCRIBE __redis__:invalidate`), then the reader
    /// (`CLIENT TRACKING ON REDIRECT <listener id>`), on `configuration.endpoint`.
    ///
    /// `onInvalidation` and `onLoss` are called on the event loop and must not block. `onLoss` is
    /// called at most once, also when the pair is closed on purpose.
    /// - Throws: ``RedisError``: `.connection`/`.timeout` when the node cannot be reached;
    ///   `.server` with the server's message verbatim when it refuses tracking (Redis before 6,
    ///   or an ACL without `client` rights).
    package static func open(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        onInvalidation: @escaping @Sendable (Invalidation) -> Void,
        onLoss: @escaping @Sendable (RedisError) -> Void
    ) async throws(RedisError) -> TrackedConnectionPair {
        let loss = PairLoss(onLoss: onLoss)
        let listener = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger, exclusive: false)
        loss.watch(listener)
        let reader: RedisConnection
        let listenerID: Int64
        do throws(RedisError) {
            let idReply = try await listener.send(RedisCommand("CLIENT", "ID"))
            guard let id = idReply.int, id > 0 else {
                throw RedisError(code: .protocolError, message: "CLIENT ID answered \(idReply), not a positive integer")
            }
            listenerID = id
            reader = try await RedisConnection.connect(configuration: configuration, eventLoop: eventLoop, logger: logger, exclusive: false)
            loss.watch(reader)
        } catch {
            loss.report(error)
            throw error
        }
        do throws(RedisError) {
            await listener.setHandlers(onPush: { push in
                if let invalidation = Self.invalidation(from: push) { onInvalidation(invalidation) }
            }, onClose: { error in loss.report(error) })
            let confirmation = try await listener.send(RedisCommand("SUBSCRIBE", RedisArgument(invalidationChannel)))
            guard confirmation.array?.first?.string == "subscribe" else {
                throw RedisError(code: .protocolError, message: "SUBSCRIBE \(invalidationChannel) answered \(confirmation)")
            }
            await reader.setHandlers(onPush: nil, onClose: { error in loss.report(error) })
            _ = try await reader.send(RedisCommand("CLIENT", "TRACKING", "ON", "REDIRECT", RedisArgument(listenerID)))
        } catch {
            loss.report(error)
            throw error
        }
        guard !loss.isLost else {
            throw RedisError(code: .connection, message: "the tracking connections to \(configuration.endpoint) closed while opening")
        }
        return TrackedConnectionPair(endpoint: configuration.endpoint, listenerID: listenerID, reader: reader, listener: listener, loss: loss, commandTimeout: configuration.commandTimeout)
    }

    /// Whether the pair is still whole (neither connection has closed or failed).
    package var isActive: Bool { !loss.isLost }

    /// Sends `first` (already encoded) and `second` in one write on the tracked reader: the keys
    /// `second` reads are tracked from now on.
    package func send(preEncoded first: ByteBuffer, then second: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> (RESPValue, RESPValue) {
        var buffer = first
        var encoded = RESPEncoder.encode(second)
        buffer.writeBuffer(&encoded)
        let reply = try await reader.send(encoded: buffer, timeout: TimeAmount(timeout ?? commandTimeout), replies: 2)
        guard case .array(let replies) = reply, replies.count == 2 else {
            throw RedisError(code: .protocolError, message: "expected 2 replies, got \(reply)")
        }
        return (replies[0], replies[1])
    }

    /// `PING` on the listener (subscribe mode answers `pong`): proves within `timeout` that the
    /// connection invalidations arrive on is alive. A timeout closes the pair.
    package func ping(timeout: Duration? = nil) async throws(RedisError) {
        let reply = try await listener.send(RedisCommand("PING"), timeout: timeout)
        guard reply.array?.first?.string == "pong" else {
            throw RedisError(code: .protocolError, message: "PING in subscribe mode answered \(reply)")
        }
    }

    /// Closes both connections (`onLoss` is called, if it was not already).
    package func close() async {
        await listener.close()
        await reader.close()
    }

    /// `message __redis__:invalidate <keys | nil>` → the invalidation; anything else → `nil`.
    static func invalidation(from push: RESPValue) -> Invalidation? {
        guard case .array(let items) = push, items.count == 3, items[0].string == "message", items[1].string == invalidationChannel else { return nil }
        switch items[2] {
        case .null: return .everything
        case .array(let keys): return .keys(keys.compactMap(\.string))
        case .bulkString(let key): return .keys([String(buffer: key)])
        default: return nil
        }
    }
}
