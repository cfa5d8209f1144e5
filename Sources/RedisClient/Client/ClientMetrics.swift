import CoreMetrics

/// The swift-metrics instruments of one client, created once (creating them per command is costly).
///
/// Names: `redis_commands_total`, `redis_command_errors_total{code}`, `redis_command_duration_seconds`,
/// `redis_reconnects_total`, `redis_connect_failures_total`, `redis_noscript_reloads_total`,
/// `redis_pubsub_resubscribes_total`, `redis_pubsub_keepalive_pings_total`, and on a cluster
/// `redis_cluster_redirects_total` (MOVED and ASK followed), `redis_cluster_map_loads_total` and
/// `redis_pubsub_shard_channels_moved_total` (shard channels the server dropped, then subscribed
/// again where their slot is now). Every instrument carries the `client` dimension (the label you chose).
struct ClientMetrics: Sendable {
    let commands: Counter
    let duration: Timer
    let reconnects: Counter
    let connectFailures: Counter
    let noscriptReloads: Counter
    let resubscribes: Counter
    let keepalivePings: Counter
    let clusterRedirects: Counter
    let clusterRefreshes: Counter
    let shardChannelsMoved: Counter
    private let errors: [RedisError.Code: Counter]
    private let otherErrors: Counter

    init(label: String) {
        let client = [("client", label)]
        commands = Counter(label: "redis_commands_total", dimensions: client)
        duration = Timer(label: "redis_command_duration_seconds", dimensions: client)
        reconnects = Counter(label: "redis_reconnects_total", dimensions: client)
        connectFailures = Counter(label: "redis_connect_failures_total", dimensions: client)
        noscriptReloads = Counter(label: "redis_noscript_reloads_total", dimensions: client)
        resubscribes = Counter(label: "redis_pubsub_resubscribes_total", dimensions: client)
        keepalivePings = Counter(label: "redis_pubsub_keepalive_pings_total", dimensions: client)
        clusterRedirects = Counter(label: "redis_cluster_redirects_total", dimensions: client)
        clusterRefreshes = Counter(label: "redis_cluster_map_loads_total", dimensions: client)
        shardChannelsMoved = Counter(label: "redis_pubsub_shard_channels_moved_total", dimensions: client)
        var errors: [RedisError.Code: Counter] = [:]
        for code in [RedisError.Code.connection, .timeout, .protocolError, .server, .authentication, .configuration, .cancelled, .shutdown, .tls, .crossSlot, .readOnly] {
            errors[code] = Counter(label: "redis_command_errors_total", dimensions: client + [("code", code.description)])
        }
        self.errors = errors
        otherErrors = Counter(label: "redis_command_errors_total", dimensions: client + [("code", "other")])
    }

    func recordError(_ code: RedisError.Code) {
        (errors[code] ?? otherErrors).increment()
    }
}
