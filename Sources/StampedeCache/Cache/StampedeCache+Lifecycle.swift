import Logging
import RedisClient
import ServiceLifecycle

extension StampedeCache {
    /// Runs the cache's background work until graceful shutdown, cancellation or ``close()``, then
    /// closes the cache.
    ///
    /// On start it loads the scripts, reads the namespace generation, subscribes the notice channel
    /// and checks the Redis user's permissions (each best effort: a worker can start while Redis is
    /// down). Then, in one loop: hot-key hit counts go to Redis every 100 ms (when hot keys are
    /// enabled) and the generation is re-read every second (and a near-cache's tracking
    /// connections are pinged: one that does not answer is closed and the near-cache dropped).
    ///
    /// On graceful shutdown the cache closes as ``close()`` does, waiting for computations in
    /// flight (each bounded by ``CachePolicy/computeTimeout``) so their values are stored. On
    /// cancellation it cancels them instead.
    /// - Throws: ``CacheError/Code/closed`` when the cache was closed or is already running.
    public func run() async throws {
        guard lifecycle.claimRun() else {
            throw CacheError(code: .closed, message: "the cache for namespace '\(namespace)' is closed or already running; run() runs once per cache")
        }
        lifecycle.markBackgroundRunning()
        await start()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.backgroundLoop() }
                group.addTask { await self.lifecycle.waitUntilClosed() }
                await group.next()
                group.cancelAll()
            }
        }
        if Task.isCancelled, !Task.isShuttingDownGracefully { background.cancelAll() }
        await close()
    }

    /// Prepares for the first requests (best effort): loads the scripts, reads the generation,
    /// subscribes the notice channel, logs each missing permission once.
    /// Runs once per cache; later calls return at once.
    package func start() async {
        guard lifecycle.claimStart() else { return }
        var scriptsLoaded = false
        do {
            try await redis.preload(CacheScripts.all)
            scriptsLoaded = true
            await refreshGeneration()
            try await hub.ensureSubscribed(keySpace.channel)
        } catch {
            logger.warning("Redis not reachable while starting the cache; will retry on use", metadata: ["error": "\(error)"])
        }
        // An ACL that denies PUBLISH, EVALSHA, ... makes the cache degrade quietly (followers fall
        // back to polling, commits fail): say so once, at start, naming each command. (SUBSCRIBE
        // was just tried, and the scripts were just loaded.)
        do {
            for missing in try await Self.missingPermissions(redis: redis, namespace: namespace, subscribe: false, loadScripts: !scriptsLoaded) {
                logger.error("the Redis user lacks a permission the cache needs", metadata: ["command": "\(missing.command)", "neededFor": "\(missing.neededFor)", "server": "\(missing.serverMessage)"])
            }
        } catch {
            logger.debug("permission check skipped: Redis not reachable", metadata: ["error": "\(error)"])
        }
    }

    /// How often aggregated hit counts are sent to Redis (one `hot_touch` per touched key).
    static let hitFlushInterval: Duration = .milliseconds(100)
    /// How often the namespace generation is re-read (notices carry changes at once; this catches missed ones).
    static let generationRefreshInterval: Duration = .seconds(1)
    /// The age past which requests notice that the running loop has not refreshed the generation.
    static let loopGenerationMaxAge: Duration = .seconds(3)
    static let loopGenerationMaxAgeNanoseconds = loopGenerationMaxAge.nanosecondsClamped
    static let generationRefreshIntervalNanoseconds = generationRefreshInterval.nanosecondsClamped

    /// The background loop: one timer for hit flushing and generation refresh.
    private func backgroundLoop() async {
        let tick = policy.hot.ttl > .zero ? Self.hitFlushInterval : Self.generationRefreshInterval
        let ticksPerRefresh = max(1, Int(Self.generationRefreshInterval / tick))
        var ticks = 0
        while !Task.isCancelled {
            do { try await Task.sleep(for: tick) } catch { return }
            ticks += 1
            await backgroundTick(refreshGeneration: ticks % ticksPerRefresh == 0)
        }
    }

    /// One round of background work; a host that runs many caches (``LLMCache``) calls this for
    /// each of them from its own single loop.
    ///
    /// With the generation refresh (once a second) it also subscribes the notice channel again if
    /// the start could not (Redis unreachable, the subscriber connection lost mid-SUBSCRIBE): until
    /// then followers fall back to polling, so this is not left to the next follower.
    package func backgroundTick(refreshGeneration refresh: Bool) async {
        if policy.hot.ttl > .zero { await flushHits() }
        guard refresh else { return }
        await near?.keepalive()
        await refreshGeneration()
        hub.releaseIdleChannels()
        if lifecycle.startClaimed, !lifecycle.isClosed, !hub.isSubscribed(keySpace.channel) {
            do {
                if try await hub.ensureSubscribed(keySpace.channel) {
                    diagnosticsBox.update { $0.channelResubscribes += 1 }
                }
            } catch {
                logger.debug("the notice channel is still not subscribed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Marks the cache as served by a host's background loop (see ``backgroundTick(refreshGeneration:)``).
    package func hostBackgroundWork() {
        lifecycle.markBackgroundRunning()
    }

    /// Closes the cache, for good: new calls fail with ``CacheError/Code/closed``; the notice channel
    /// is released (unsubscribed when no other cache on the client uses it); counted hits are sent;
    /// computations and refreshes in flight are awaited (each is bounded by
    /// ``CachePolicy/computeTimeout``) so their values are stored. Does not close the `RedisClient`.
    /// Calling it again waits for the same things and returns.
    public func close() async {
        if lifecycle.close() {
            hub.unregister(registration)
        }
        await flushHits()
        await background.waitForAll()
        await near?.close()
    }

    /// Returns when every computation and refresh started so far (and any they start) has ended (tests, tools).
    package func waitForBackgroundWork() async {
        await background.waitForAll()
    }

    /// Whether ``close()`` was called (or ``run()`` ended).
    public var isClosed: Bool { lifecycle.isClosed }

    /// Whether nothing is in flight: no caller in a flight, no computation or refresh running.
    package var isIdle: Bool { coalescer.flightCount == 0 && background.count == 0 }

    /// Throws ``CacheError/Code/closed`` when the cache takes no new work.
    func checkOpen() throws(CacheError) {
        if lifecycle.isClosed { throw CacheError.closed(namespace: namespace) }
    }
}
