import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// The first TLS error a connection saw, readable from any thread.
///
/// In TLS 1.3 the client's handshake completes before the server checks the client's certificate,
/// so a server that wants one (`tls-auth-clients yes`) answers with an alert only afterwards, often
/// while the Redis handler is still being added. The connect path reads this record to report that
/// alert as what it is, not as "the connection closed".
final class TLSErrorRecord: Sendable {
    private let first = Mutex<(any Error)?>(nil)

    func record(_ error: any Error) {
        first.withLock { if $0 == nil { $0 = error } }
    }

    var error: (any Error)? { first.withLock { $0 } }
}

/// Sits behind `NIOSSLClientHandler`, reports how the TLS handshake ended, and records any TLS
/// error that follows it.
///
/// The Redis handshake (`AUTH`, `SELECT`, …) is sent only once this promise succeeds, so a TLS
/// failure surfaces as one clear ``RedisError/Code/tls`` instead of as a failed `AUTH`. Every event
/// is passed on unchanged.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let promise: EventLoopPromise<Void>
    private let record: TLSErrorRecord
    private var done = false

    init(promise: EventLoopPromise<Void>, record: TLSErrorRecord) {
        self.promise = promise
        self.record = record
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event, !done {
            done = true
            promise.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if TLSFailure.isTLSError(error) { record.record(error) }
        if !done {
            done = true
            promise.fail(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(NIOSSLError.uncleanShutdown)
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(ChannelError.ioOnClosedChannel)
        }
    }
}
