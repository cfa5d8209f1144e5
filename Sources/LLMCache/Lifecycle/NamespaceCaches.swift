import Logging
import RedisClient
import StampedeCache
import Synchronization

/// One ``StampedeCache`` per tenant namespace, created on first use and released when idle.
///
/// A lookup is one lock-protected dictionary access (no actor hop on every request). Every cache
/// shares the client's notice listener; none runs a loop of its own: ``LLMCache/run()`` does their
/// background work from one loop.
final class NamespaceCaches: Sendable {
    private struct Entry {
        var cache: StampedeCache
        var lastUsed: ContinuousClock.Instant
        var started = false
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var closed = false
    }

    private let redis: RedisClient
    private let policy: CachePolicy
    private let defaultNamespace: String
    private let logger: Logger
    /// The `namespace` label of a namespace's metrics.
    private let metricsLabel: @Sendable (String) -> String
    private let nearCache: NearCacheConfiguration?
    private let state = Mutex(State())

    /// Creates the default namespace's cache.
    /// - Throws: ``CacheConfigurationError`` for an invalid policy or default namespace.
    init(
        redis: RedisClient, policy: CachePolicy, defaultNamespace: String, logger: Logger,
        metricsLabel: @escaping @Sendable (String) -> String = { $0 },
        nearCache: NearCacheConfiguration? = nil
    ) throws(CacheConfigurationError) {
        self.metricsLabel = metricsLabel
        self.nearCache = nearCache
        self.redis = redis
        self.policy = policy
        self.defaultNamespace = defaultNamespace
        self.logger = logger
        let cache = try StampedeCache(redis: redis, namespace: defaultNamespace, policy: policy, logger: logger, metricsLabel: metricsLabel(defaultNamespace), nearCache: nearCache)
        cache.hostBackgroundWork()
        state.withLock { $0.entries[defaultNamespace] = Entry(cache: cache, lastUsed: .now) }
    }

    /// The namespace's cache, created if needed.
    /// - Throws: ``CacheConfigurationError`` for an invalid namespace; ``CacheError/Code/closed`` after ``closeAll()``.
    func cache(for namespace: String) throws -> StampedeCache {
        let now = ContinuousClock.now
        return try state.withLock { (state) throws -> StampedeCache in
            if state.closed {
                throw CacheError(code: .closed, message: "the LLM cache is closed and takes no new work; create a new LLMCache")
            }
            if state.entries[namespace] != nil {
                state.entries[namespace]!.lastUsed = now
                return state.entries[namespace]!.cache
            }
            let cache = try StampedeCache(redis: redis, namespace: namespace, policy: policy, logger: logger, metricsLabel: metricsLabel(namespace), nearCache: nearCache)
            cache.hostBackgroundWork()
            state.entries[namespace] = Entry(cache: cache, lastUsed: now)
            return cache
        }
    }

    /// Marks `namespace` as used now (called when a request ends, so a request that took longer
    /// than the idle time does not make its namespace look idle the moment it returns).
    func touch(_ namespace: String) {
        let now = ContinuousClock.now
        state.withLock { state in
            if state.entries[namespace] != nil { state.entries[namespace]!.lastUsed = now }
        }
    }

    /// The live caches.
    var all: [StampedeCache] { state.withLock { $0.entries.values.map(\.cache) } }

    /// How many namespaces are live.
    var count: Int { state.withLock { $0.entries.count } }

    /// Caches created since the last call (to be started by the host's loop).
    func takeUnstarted() -> [StampedeCache] {
        state.withLock { state in
            var fresh: [StampedeCache] = []
            for (namespace, entry) in state.entries where !entry.started {
                state.entries[namespace]!.started = true
                fresh.append(entry.cache)
            }
            return fresh
        }
    }

    /// Removes and returns the caches (other than the default namespace's) unused for `idle` and
    /// with nothing in flight; the caller closes them.
    func takeIdle(unusedFor idle: Duration) -> [StampedeCache] {
        let now = ContinuousClock.now
        return state.withLock { state in
            var released: [StampedeCache] = []
            for (namespace, entry) in state.entries where namespace != defaultNamespace && now - entry.lastUsed >= idle && entry.cache.isIdle {
                state.entries[namespace] = nil
                released.append(entry.cache)
            }
            return released
        }
    }

    /// Refuses new lookups and returns every cache (the caller closes them).
    func takeAllForClosing() -> [StampedeCache] {
        state.withLock { state in
            state.closed = true
            defer { state.entries = [:] }
            return state.entries.values.map(\.cache)
        }
    }
}
