import CoreMetrics

/// swift-metrics instruments of one near-cache (dimension `namespace`):
/// `stampede_near_cache_hits_total`, `stampede_near_cache_misses_total`,
/// `stampede_near_cache_evictions_total`, `stampede_near_cache_not_admitted_total`,
/// `stampede_near_cache_invalidations_total` (messages' keys received),
/// `stampede_near_cache_flushes_total{reason}` and the gauges `stampede_near_cache_entries`,
/// `stampede_near_cache_bytes`.
struct NearCacheMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let evictions: Counter
    let notAdmitted: Counter
    let invalidations: Counter
    let entries: Gauge
    let bytes: Gauge
    private let namespace: String

    init(namespace: String) {
        self.namespace = namespace
        let dimensions = [("namespace", namespace)]
        hits = Counter(label: "stampede_near_cache_hits_total", dimensions: dimensions)
        misses = Counter(label: "stampede_near_cache_misses_total", dimensions: dimensions)
        evictions = Counter(label: "stampede_near_cache_evictions_total", dimensions: dimensions)
        notAdmitted = Counter(label: "stampede_near_cache_not_admitted_total", dimensions: dimensions)
        invalidations = Counter(label: "stampede_near_cache_invalidations_total", dimensions: dimensions)
        entries = Gauge(label: "stampede_near_cache_entries", dimensions: dimensions)
        bytes = Gauge(label: "stampede_near_cache_bytes", dimensions: dimensions)
    }

    /// `reason`: `connection_lost`, `topology_changed`, `server_flush`, `closed`.
    func flushed(_ reason: String) {
        Counter(label: "stampede_near_cache_flushes_total", dimensions: [("namespace", namespace), ("reason", reason)]).increment()
    }
}
