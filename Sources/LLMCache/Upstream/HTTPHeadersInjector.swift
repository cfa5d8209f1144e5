import NIOHTTP1
import Tracing

/// Writes trace-context fields (W3C `traceparent`, `tracestate`, …) into an upstream request's headers.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}
