import CoreMetrics
import Hummingbird
import Logging
import Synchronization

/// The proxy's HTTP metrics (swift-metrics; `/metrics` shows them with the libraries' own):
/// `stampede_proxy_requests_total{route,status,cache}` and
/// `stampede_proxy_request_duration_seconds{route}`. Instruments are created once per label set.
final class ProxyMetrics: Sendable {
    private struct Key: Hashable {
        var route: String
        var status: Int
        var cache: String
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])

    /// The cache outcome a handler sets when the request is recorded later (a live stream, once
    /// its source is known).
    static let recordedLater = "(recorded later)"

    /// Runs one request's handler, which sets the cache outcome (`none` until it does): a thrown
    /// error becomes its OpenAI-shaped response (5xx ones are logged as `failing`), and the
    /// route, status, cache outcome and duration are recorded.
    func measure(route: String, logger: Logger, failing: String, _ handle: (inout String) async throws -> Response) async -> Response {
        let started = ContinuousClock.now
        var cache = "none"
        let response: Response
        do {
            response = try await handle(&cache)
        } catch {
            let failure = ProxyFailure.map(error)
            response = ProxyResponses.error(failure)
            if failure.status.code >= 500 { logger.warning("\(failing)", metadata: ["status": "\(failure.status.code)", "error": "\(error)"]) }
        }
        if cache != Self.recordedLater { record(route: route, status: response.status.code, cache: cache, duration: ContinuousClock.now - started) }
        return response
    }

    /// Counts one answered request and its duration.
    func record(route: String, status: Int, cache: String, duration: Duration) {
        let key = Key(route: route, status: status, cache: cache)
        let counter = counters.withLock { counters in
            if let existing = counters[key] { return existing }
            let created = Counter(label: "stampede_proxy_requests_total", dimensions: [("route", route), ("status", String(status)), ("cache", cache)])
            counters[key] = created
            return created
        }
        counter.increment()
        let timer = timers.withLock { timers in
            if let existing = timers[route] { return existing }
            let created = Timer(label: "stampede_proxy_request_duration_seconds", dimensions: [("route", route)], preferredDisplayUnit: .seconds)
            timers[route] = created
            return created
        }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
