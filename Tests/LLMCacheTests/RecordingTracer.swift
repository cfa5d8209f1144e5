import Foundation
import Synchronization
import Tracing

/// A real swift-distributed-tracing `Tracer`, bootstrapped once for the test process, that records
/// only the spans of traces a test started with ``RecordingTracer/trace(_:)`` (their
/// `ServiceContext` carries the test's trace id; the cache carries it into the tasks it owns).
/// Every other span in the process is not recorded, so other suites are unaffected.
final class RecordingTracer: Tracer {
    typealias Span = RecordedSpan

    /// A finished span.
    struct Finished: Sendable {
        var name: String
        var kind: SpanKind
        var traceID: String
        var spanID: String
        var parentID: String?
        var attributes: [String: String]
        var errors: Int
    }

    enum TraceKey: ServiceContextKey { typealias Value = String }
    enum SpanKey: ServiceContextKey { typealias Value = String }

    static let shared = RecordingTracer()
    private static let bootstrap: Void = { InstrumentationSystem.bootstrap(shared) }()
    private let finished = Mutex<[Finished]>([])

    /// Runs `body` in a new trace; returns its result and the trace id.
    static func trace<T>(_ body: () async throws -> T) async rethrows -> (T, String) {
        _ = bootstrap
        let id = UUID().uuidString
        var context = ServiceContext.topLevel
        context[TraceKey.self] = id
        let result = try await ServiceContext.withValue(context) { try await body() }
        return (result, id)
    }

    /// The finished spans of `trace`.
    func spans(of trace: String) -> [Finished] {
        finished.withLock { $0.filter { $0.traceID == trace } }
    }

    func record(_ span: Finished) {
        finished.withLock { $0.append(span) }
    }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> RecordedSpan {
        var spanContext = context()
        let parent = spanContext[SpanKey.self]
        let id = UUID().uuidString
        spanContext[SpanKey.self] = id
        return RecordedSpan(tracer: spanContext[TraceKey.self] == nil ? nil : self, name: operationName, kind: kind, context: spanContext, parent: parent)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject) where Inject.Carrier == Carrier {
        if let trace = context[TraceKey.self], let span = context[SpanKey.self] { injector.inject("\(trace)/\(span)", forKey: "x-test-trace", into: &carrier) }
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract) where Extract.Carrier == Carrier {}
}

/// A span of ``RecordingTracer``; recorded when it ends, if it belongs to a test's trace.
final class RecordedSpan: Span {
    /// An attribute's value as text (`"accepted"`, `"12"`, `"true"`).
    static func text(_ value: SpanAttribute) -> String {
        switch value {
        case .string(let text): return text
        case .int64(let number): return String(number)
        case .int32(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return String(flag)
        default: return "\(value)"
        }
    }

    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var errors = 0
        var ended = false
    }

    let context: ServiceContext
    private let tracer: RecordingTracer?
    private let kind: SpanKind
    private let parent: String?
    private let state: Mutex<State>

    init(tracer: RecordingTracer?, name: String, kind: SpanKind, context: ServiceContext, parent: String?) {
        self.tracer = tracer
        self.kind = kind
        self.context = context
        self.parent = parent
        self.state = Mutex(State(name: name))
    }

    var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    var isRecording: Bool { tracer != nil }

    func setStatus(_ status: SpanStatus) {}
    func addEvent(_ event: SpanEvent) {}
    func addLink(_ link: SpanLink) {}

    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        state.withLock { $0.errors += 1 }
    }

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard let tracer, let trace = context[RecordingTracer.TraceKey.self], let id = context[RecordingTracer.SpanKey.self] else { return }
        let finished: RecordingTracer.Finished? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            var attributes: [String: String] = [:]
            state.attributes.forEach { name, value in attributes[name] = Self.text(value) }
            return RecordingTracer.Finished(name: state.name, kind: kind, traceID: trace, spanID: id, parentID: parent, attributes: attributes, errors: state.errors)
        }
        if let finished { tracer.record(finished) }
    }
}
