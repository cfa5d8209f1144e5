import CoreMetrics
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
