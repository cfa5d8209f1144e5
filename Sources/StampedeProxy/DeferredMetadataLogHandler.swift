public import Logging

/// A log handler that keeps its logger's metadata to itself and hands it to the handler it wraps
/// only with a message, so setting metadata costs a dictionary write.
///
/// Hummingbird gives every request a logger with its own `hb.request.id`; swift-log's
/// `StreamLogHandler` renders all of its metadata into a string each time metadata is set, which
/// was about 3% of the proxy's CPU per cached answer, for lines that are almost never written.
/// Wrapped here, the stream handler renders metadata only for a line it writes, and writes the
/// same line: the logger's metadata with the message's own on top, as it would have.
///
/// ```swift
/// LoggingSystem.bootstrap { label in DeferredMetadataLogHandler(wrapping: StreamLogHandler.standardError(label: label)) }
/// ```
public struct DeferredMetadataLogHandler: LogHandler {
    private var wrapped: any LogHandler

    /// The logger's metadata (not passed to the wrapped handler until a message is logged).
    public var metadata: Logger.Metadata = [:]

    /// Wraps `handler`, whose own metadata is left as it is.
    public init(wrapping handler: any LogHandler) {
        self.wrapped = handler
    }

    /// The wrapped handler's level.
    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    /// The wrapped handler's metadata provider.
    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    /// One value of ``metadata``.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Logs `event` through the wrapped handler, with ``metadata`` under the event's own.
    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        wrapped.log(event: event)
    }
}
