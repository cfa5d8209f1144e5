import Logging
import StampedeProxy
import Synchronization
import Testing

/// Records what reaches it: each event, and each time its own metadata is set.
private struct RecordingHandler: LogHandler {
    final class Record: Sendable {
        let events = Mutex<[LogEvent]>([])
        let metadataWrites = Atomic<Int>(0)
    }

    let record: Record
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:] {
        didSet { record.metadataWrites.add(1, ordering: .relaxed) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { record.events.withLock { $0.append(event) } }
}

@Suite("stampede serve: loggers' metadata is handed over only with a line")
struct DeferredMetadataLogHandlerTests {
    @Test("1,000 metadata writes reach the wrapped handler 0 times; a line carries the logger's metadata under its own, and the level and filtering are the wrapped handler's")
    func metadataTravelsWithLines() throws {
        let record = RecordingHandler.Record()
        var logger = Logger(label: "t") { _ in DeferredMetadataLogHandler(wrapping: RecordingHandler(record: record)) }
        for index in 0..<1_000 { logger[metadataKey: "hb.request.id"] = "\(index)" }
        logger[metadataKey: "route"] = "/v1/chat/completions"
        let writes = record.metadataWrites.load(ordering: .relaxed)
        #expect(writes == 0)
        logger.debug("not written at info")
        logger.info("answered", metadata: ["route": "explicit", "status": "200"])
        logger.logLevel = .warning
        logger.info("filtered")
        let events = record.events.withLock { $0 }
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.message == "answered")
        #expect(event.level == .info)
        #expect(event.metadata == ["hb.request.id": "999", "route": "explicit", "status": "200"])
    }
}
