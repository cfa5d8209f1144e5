import Logging
import ServiceLifecycle
import StampedeCache

extension LLMCache {
    /// Runs the background work of every namespace's cache from one loop until graceful shutdown,
    /// cancellation or ``close()``, then closes.
    ///
    /// The loop sends hot-key hit counts (every 100 ms when hot keys are enabled), re-reads
    /// namespace generations (every second), adds this process's accounting to the fleet's in Redis
    /// (every ``LLMCacheConfiguration/accountingFlushInterval``), starts newly used namespaces and
    /// releases idle ones (``LLMCacheConfiguration/idleNamespaceRelease``).
    /// - Throws: ``CacheError/Code/closed`` when the cache was closed or is already running.
    public func run() async throws {
        guard !closed.load(ordering: .relaxed), runClaimed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else {
            throw CacheError(code: .closed, message: "the LLM cache is closed or already running; run() runs once per cache")
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.backgroundLoop() }
                group.addTask { await self.closeSignal.wait() }
                await group.next()
                group.cancelAll()
            }
        }
        await close()
    }

    private func backgroundLoop() async {
        let tick = min(configuration.policy.hot.ttl > .zero ? Duration.milliseconds(100) : .seconds(1), configuration.accountingFlushInterval)
        let clock = ContinuousClock()
        var lastGeneration = clock.now
        var lastAccounting = clock.now
        var lastIdleCheck = clock.now
        while !Task.isCancelled {
            for cache in caches.takeUnstarted() { await cache.start() }
            let now = clock.now
            let refresh = now - lastGeneration >= .seconds(1)
            if refresh { lastGeneration = now }
            for cache in caches.all { await cache.backgroundTick(refreshGeneration: refresh) }
            if now - lastAccounting >= configuration.accountingFlushInterval {
                lastAccounting = now
                await flushAccounting()
            }
            if now - lastIdleCheck >= min(configuration.idleNamespaceRelease, .seconds(10)) {
                lastIdleCheck = now
                for cache in caches.takeIdle(unusedFor: configuration.idleNamespaceRelease) {
                    logger.debug("releasing an idle namespace", metadata: ["namespace": "\(cache.namespace)"])
                    await cache.close()
                }
            }
            do { try await clock.sleep(for: tick) } catch { return }
        }
    }

    /// Closes for good: new calls fail with ``CacheError/Code/closed``; the accounting is flushed a
    /// last time and every namespace's cache is closed (computations in flight are awaited). Does
    /// not close the Redis client.
    public func close() async {
        closed.store(true, ordering: .relaxed)
        closeSignal.fire()  // ends run()
        for cache in caches.takeAllForClosing() { await cache.close() }
        await flushAccounting()
    }

    /// How many namespaces have a live cache (tests and diagnostics).
    public var liveNamespaces: Int { caches.count }

    func checkOpen() throws(CacheError) {
        if closed.load(ordering: .relaxed) {
            throw CacheError(code: .closed, message: "the LLM cache is closed and takes no new work; create a new LLMCache")
        }
    }
}
