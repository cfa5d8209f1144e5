import Logging
import NIOCore
import RedisClient
import Synchronization
import Tracing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension StampedeCache {
    /// One call, traced as a `stampede.cache.get` span (attributes: `stampede.namespace`,
    /// `stampede.source`, `stampede.coalesced`; never the key or the value). A near-cache hit is
    /// answered before any span: it is a memory lookup, cheaper than the span itself.
    /// - Parameters:
    ///   - nearAsked: the caller already asked the near-cache (``nearLookup(for:options:)``
    ///     answered `.miss`): it is not asked (nor a miss counted) twice.
    ///   - first: what the caller's ``firstLook(for:options:)`` read, when it read and found no
    ///     fresh entry: the flight starts from it instead of reading again.
    func outcome(
        for key: String,
        options: CacheRequestOptions,
        nearAsked: Bool = false,
        after first: FirstRead? = nil,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        if near != nil, !options.forceRefresh, !nearAsked {
            try checkOpen()
            try options.validate()
            let generation: Int64
            if let current = generationIfCurrent() { generation = current } else { generation = await currentGeneration() }
            if let served = nearHit(key, generation: generation, now: .now) { return served }
        }
        guard TracingState.isActive else { return try await untracedOutcome(for: key, options: options, after: first, compute: compute) }
        return try await withSpan("stampede.cache.get", ofKind: .internal) { span in
            if span.isRecording {
                span.attributes["stampede.namespace"] = namespace
            }
            let outcome = try await untracedOutcome(for: key, options: options, after: first, compute: compute)
            if span.isRecording {
                span.attributes["stampede.source"] = outcome.source.label
                span.attributes["stampede.coalesced"] = outcome.coalesced
            }
            return outcome
        }
    }

    private func untracedOutcome(
        for key: String,
        options: CacheRequestOptions,
        after first: FirstRead?,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        try checkOpen()
        try options.validate()
        let generation: Int64
        let entry: EntryKeys
        let encodedGet: ByteBuffer?
        // The read `first` took (its hit already counted), or none yet.
        var prefetched: Result<FastRead, any Error>? = first?.result
        if let first {
            generation = first.generation
            entry = first.entry
            encodedGet = nil
        } else {
            if let current = generationIfCurrent() { generation = current } else { generation = await currentGeneration() }
            (entry, encodedGet) = try recentKeys.names(for: key, generation: generation)
            recordHit(entry)
        }
        let flightKey = Self.flightKey(entry, options)
        // Read first (a plain GET, batched with concurrent reads) while most recent lookups found a
        // fresh entry; otherwise get_or_lock answers in one round trip, a fresh entry included
        // (LookupHistory). A near-cache always reads first: that read is what fills it.
        let readFirst = first != nil || near != nil || lookups.readsFirst
        if first == nil {
            // This process computed the value and answered it before its commit landed
            // (commitInBackground): Redis holds only our lock until then, so it is received from here.
            if !options.forceRefresh, var pending = pendingCommits.value(for: entry.id) {
                pending.source = .joinedInProcess
                pending.coalesced = true
                metrics.coalesced.increment()
                diagnosticsBox.update { $0.coalesced += 1 }
                metrics.request(pending.source)
                return pending
            }
            // A fresh hit needs no flight: read first, and enter the coalescer only for anything
            // else (or to join a call of this process already under way for the key). Concurrent
            // fresh reads of one key still share their Redis read: the read batcher sends a key
            // once per batch.
            if readFirst, !options.forceRefresh, !coalescer.isRunning(flightKey) {
                switch try await readBeforeFlight(entry, key: key, generation: generation, encodedGet: encodedGet) {
                case .answered(let outcome): return outcome
                case .read(let read): prefetched = read.result
                case .notTaken: break
                }
            }
        }
        var joined = false
        var outcome: Outcome
        let observer = Self.followObserver
        var observation: UInt64?
        do {
            outcome = try await coalescer.run(key: flightKey, joined: {
                joined = true
                metrics.coalesced.increment()
                diagnosticsBox.update { $0.coalesced += 1 }
                // A caller that joins this process's computation may follow it live too.
                if let observer { observation = liveAnnouncements.observe(entry.id, observer) }
            }) { flightContext in
                // The read above is used by the first flight only: a flight run again (its leader
                // left) reads afresh.
                defer { prefetched = nil }
                return try await flight(
                    key: key, entry: entry, generation: generation, options: options, prefetched: prefetched, readFirst: readFirst,
                    in: flightContext, compute: compute
                )
            }
        } catch {
            if let observation { liveAnnouncements.forget(entry.id, observation) }
            // A cancelled caller learns that it was cancelled, not which layer noticed first.
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        if let observation { liveAnnouncements.forget(entry.id, observation) }
        if !joined, !options.forceRefresh {
            // What this lookup found in Redis decides whether the next ones read first.
            switch outcome.source {
            case .freshHit, .freshHitEarlyRefresh: lookups.record(foundFresh: true)
            default: lookups.record(foundFresh: false)
            }
            if !readFirst {
                metrics.scriptFirstLookups.increment()
                diagnosticsBox.update { $0.scriptFirstLookups += 1 }
            }
        }
        if joined {
            outcome.coalesced = true
            // This call did not compute: it received a concurrent call's computation. Nor did it
            // start a refresh: the call it joined did (so a refresh is counted once, by its starter).
            switch outcome.source {
            case .computed, .computedNotStored, .uncachedRedisUnavailable: outcome.source = .joinedInProcess
            case .staleHit(.startedHere): outcome.source = .staleHit(.runningElsewhere)
            case .freshHitEarlyRefresh: outcome.source = .freshHit
            default: break
            }
        }
        metrics.request(outcome.source)
        return outcome
    }

    /// What the near-cache answered for a request, asked before anything that can suspend.
    enum NearLookup {
        /// A fresh entry it holds.
        case hit(Outcome)
        /// It was asked and holds nothing fresh for the key (counted as its miss).
        case miss
        /// Not asked: no near-cache, a forced refresh, or the generation must be read first.
        case notAsked

        var asked: Bool {
            if case .notAsked = self { return false } else { return true }
        }
    }

    /// The near-cache's answer when it needs no suspension: the public reads call this before they
    /// build their compute closure, so a near hit allocates nothing and makes no further async call.
    func nearLookup(for key: String, options: CacheRequestOptions) throws -> NearLookup {
        guard near != nil, !options.forceRefresh else { return .notAsked }
        try checkOpen()
        try options.validate()
        // One clock reading serves the generation's age and the entry's freshness.
        let now = NearInstant.now
        guard let generation = generationIfCurrent(now: now) else { return .notAsked }
        if let served = nearHit(key, generation: generation, now: now) { return .hit(served) }
        return .miss
    }

    /// A fresh entry held by the near-cache, unless its early refresh is due (XFetch): then the
    /// request goes to Redis, which decides.
    func nearHit(_ key: String, generation: Int64, now: NearInstant) -> Outcome? {
        guard let nearEntries else { return nil }
        // The hit is counted for hot-key promotion by the near-cache itself, under the lock the
        // lookup holds (sent with the other counts by the background loop).
        guard let held = nearEntries.lookup(key, generation: generation, now: now, countsHit: policy.hot.ttl > .zero, serves: { held in
            !earlyRefreshDue(computeMillis: held.computeMillis, freshUntil: held.freshUntil, serverNow: held.serverTimeUpperBound(at: now))
        }) else { return nil }
        metrics.request(.freshHitNear)
        return Self.served(held, at: now)
    }

    /// The fast path's read: `GET` (batched with concurrent reads) while the server clock is
    /// sampled, else `TIME` + `GET`, in one round trip and no script; retried once on a fresh
    /// connection after a timeout or a dropped connection. With a near-cache the read goes through
    /// its tracked connection, which then holds a fresh entry. `encodedGet`: the entry's `GET`,
    /// already encoded (``RecentEntryKeys``).
    func fastRead(_ entry: EntryKeys, key: String, generation: Int64, encodedGet: ByteBuffer? = nil) async throws -> FastRead {
        if let near, let tracked = await near.read(entry, userKey: key, generation: generation) { return tracked }
        let cluster: Bool
        if let known = redis.knownClusterMode { cluster = known } else { cluster = try await redis.isCluster() }
        do throws(RedisError) {
            return try await redis.fastRead(entry, clock: serverClock, cluster: cluster, batcher: reads, encodedGet: encodedGet)
        } catch {
            return try await fastReadAgain(entry, cluster: cluster, after: error)
        }
    }

    /// The fast read once more after `error`, on a fresh connection, when it was a timeout or a
    /// dropped connection (see ``retryingOnce(_:)``).
    private func fastReadAgain(_ entry: EntryKeys, cluster: Bool, after error: RedisError) async throws(RedisError) -> FastRead {
        guard error.code == .timeout || error.code == .connection, !Task.isCancelled else { throw error }
        noteReadRetry(error)
        return try await redis.fastRead(entry, clock: serverClock, cluster: cluster, batcher: reads)
    }

    func flight(
        key: String,
        entry: EntryKeys,
        generation: Int64,
        options: CacheRequestOptions,
        prefetched: Result<FastRead, any Error>? = nil,
        readFirst: Bool = true,
        in flightContext: FlightCoalescer<Outcome>.Context,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        // Fast path: one round trip, no script (`prefetched`: the caller's read just before the
        // flight). Only a fresh entry is served from here; anything else (stale, missing, early
        // refresh due, unreadable) takes the script path. Without `readFirst` the script is asked
        // at once (``LookupHistory``).
        if !options.forceRefresh, prefetched != nil || readFirst {
            do {
                let read: FastRead
                if let prefetched {
                    read = try prefetched.get()
                } else {
                    read = try await fastRead(entry, key: key, generation: generation)
                }
                if case .entry(let stored) = read, stored.isFresh, !earlyRefreshDue(stored) {
                    return Self.served(stored, .freshHit)
                }
            } catch let error as RedisError {
                if error.code == .cancelled { throw CancellationError() }
                if Self.meansUnavailable(error) { return try await failOpen(key: key, error: error, in: flightContext, compute: compute) }
                // Any other answer (e.g. WRONGTYPE) is handled by the script path below.
            } catch {
                // Not a Redis error: the script path below decides.
            }
        }
        if options.noStore {
            // Nothing will be stored, so take no lock and make nobody wait for this computation; it
            // is cancelled when every caller waiting for it has gone.
            let timeout = policy.computeTimeout
            return try await detached(flightContext, cancelWhenAbandoned: true) { _ in
                self.diagnosticsBox.update { $0.computations += 1 }
                let computed = try await withHardTimeout(timeout, compute)
                var because = "the request asked not to store it (noStore)"
                if case .deliverWithoutStoring(_, let reason) = computed { because = reason }
                return Outcome(value: computed.value, source: .computedNotStored, age: .zero, freshUntil: nil, notCachedBecause: because)
            }
        }
        return try await scriptedFlight(key: key, entry: entry, options: options, in: flightContext, compute: compute)
    }

    /// Runs `body` as the flight's detached work: the caller can leave (cancellation) while it goes
    /// on for the callers waiting for it; with `cancelWhenAbandoned` it is cancelled once nobody waits.
    /// `body` receives the work: it may ``DetachedWork/complete(_:)`` it early (the first result
    /// wins) and go on working.
    func detached(
        _ flightContext: FlightCoalescer<Outcome>.Context,
        cancelWhenAbandoned: Bool,
        _ body: @escaping @Sendable (DetachedWork<Outcome>) async throws -> Outcome
    ) async throws -> Outcome {
        let work = DetachedWork<Outcome>(cancelWhenAbandoned: cancelWhenAbandoned)
        let task = background.spawn {
            do { work.complete(.success(try await body(work))) } catch { work.complete(.failure(error)) }
        }
        work.onAbandon { task.cancel() }
        flightContext.attach(work)
        return try await work.wait()
    }

    /// XFetch (Vattani et al. 2015): refresh early with probability rising as expiry nears.
    func earlyRefreshDue(_ stored: StoredEntry, serverNow: Int64? = nil) -> Bool {
        earlyRefreshDue(computeMillis: stored.computeMillis, freshUntil: stored.freshUntil, serverNow: serverNow ?? stored.now)
    }

    /// XFetch for an entry computed in `computeMillis`, fresh until `freshUntil`, at server time `serverNow`.
    func earlyRefreshDue(computeMillis: Int64, freshUntil: Int64, serverNow: Int64) -> Bool {
        Self.earlyRefreshDue(computeMillis: computeMillis, freshUntil: freshUntil, serverNow: serverNow, beta: policy.earlyRefreshBeta) {
            Double.random(in: Double.ulpOfOne...1)
        }
    }

    /// The largest `-ln(draw)` XFetch can meet: `draw` is at least `Double.ulpOfOne` (2⁻⁵²), and
    /// `52 × ln 2 ≈ 36.04`; rounded up.
    static let largestXFetchFactor: Double = 37

    /// XFetch (Vattani et al.): refresh early when `serverNow - computeMillis × beta × ln(draw)`
    /// reaches `freshUntil`, `draw` uniform in [2⁻⁵², 1]. Far from the deadline no draw can reach it
    /// (`-ln(draw)` never exceeds ``largestXFetchFactor``), so `draw` is not called at all: a hit
    /// costs no random number (on Linux a `getrandom` system call) and no logarithm until the
    /// entry is within `computeMillis × beta × 37` ms of its end.
    static func earlyRefreshDue(computeMillis: Int64, freshUntil: Int64, serverNow: Int64, beta: Double, draw: () -> Double) -> Bool {
        guard beta > 0, computeMillis > 0 else { return false }
        let window = Double(computeMillis) * beta
        if Double(serverNow) + window * largestXFetchFactor < Double(freshUntil) { return false }
        return Double(serverNow) - window * log(draw()) >= Double(freshUntil)
    }

    func scriptedFlight(
        key: String,
        entry: EntryKeys,
        options: CacheRequestOptions,
        in flightContext: FlightCoalescer<Outcome>.Context,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        let started = ContinuousClock.now
        var waitedForOther = false
        var repairs = 0
        var fallback: StoredEntry?
        var force = options.forceRefresh  // only the first look: after a wait, someone just recomputed
        var retriesLeft = policy.followerRetries
        // The other worker's computation this flight follows, announced to the callers that joined
        // it in this process so that they can follow it live too.
        var announcedFollow: Int64?
        defer { if let announcedFollow { liveAnnouncements.withdraw(entry.id, token: announcedFollow) } }
        while true {
            let since = ContinuousClock.now
            let reply: GetOrLockReply
            do {
                let forced = force
                reply = try await retryingOnce { try await self.redis.execute(GetOrLock(entry, policy: self.policy, force: forced)) }
                force = false
            } catch let error as RedisError {
                if error.code == .cancelled { throw CancellationError() }
                if Self.meansUnavailable(error) { return try await failOpen(key: key, error: error, in: flightContext, compute: compute) }
                throw CacheError.redisFailure(error, key: key)
            }
            switch reply {
            case .corrupt(let reason, let role):
                // Each of the three keys can be repaired once; a key that is broken again at once is
                // being written by something else, and the caller is told.
                guard repairs < 3 else { throw CacheError.corruptEntry(key: key, reason: reason) }
                repairs += 1
                try await repair(entry, role, key: key, reason: reason)
            case .fresh(let stored):
                return Self.served(stored, waitedForOther ? .receivedFromOtherWorker : .freshHit)
            case .early(let stored, let token):
                startRefresh(key: key, entry: entry, token: token, options: options, stale: stored, compute: compute)
                return Self.served(stored, .freshHitEarlyRefresh)
            case .stale(let stored, let token, let lockRemaining):
                if accepts(stored, options) {
                    if let token {
                        startRefresh(key: key, entry: entry, token: token, options: options, stale: stored, compute: compute)
                        return Self.served(stored, .staleHit(.startedHere))
                    }
                    return Self.served(stored, .staleHit(.runningElsewhere))
                }
                // Held as the fail-safe, within the caller's stale-if-error bound.
                fallback = stored.limitingFailSafe(to: options.staleIfError)
                if let token {
                    return try await lead(key: key, entry: entry, token: token, options: options, fallback: fallback, in: flightContext, compute: compute)
                }
                waitedForOther = true
                // Wait for a computation newer than the value we hold (a late notice of its own commit is not news).
                if let served = try await follow(key: key, entry: entry, since: since, started: started, lockRemaining: lockRemaining, fallback: fallback, minimumToken: stored.fence + 1, retriesLeft: &retriesLeft) {
                    return served
                }
            case .leader(let token, _):
                if waitedForOther {
                    metrics.takeovers.increment()
                    diagnosticsBox.update { $0.lockTakeovers += 1 }
                    logger.notice("took over an expired lock", metadata: ["key": "\(key)"])
                }
                return try await lead(key: key, entry: entry, token: token, options: options, fallback: fallback, in: flightContext, compute: compute)
            case .wait(let holder, let lockRemaining, _):
                waitedForOther = true
                let followed = FollowedComputation(namespace: namespace, key: key, fenceToken: holder, liveStreamKey: entry.liveStream(token: holder))
                Self.followObserver?(followed)
                if announcedFollow != holder {
                    liveAnnouncements.announce(entry.id, followed)
                    announcedFollow = holder
                }
                if let served = try await follow(key: key, entry: entry, since: since, started: started, lockRemaining: lockRemaining, fallback: fallback, minimumToken: holder, retriesLeft: &retriesLeft) {
                    return served
                }
            }
        }
    }

    func accepts(_ stored: StoredEntry, _ options: CacheRequestOptions) -> Bool {
        if options.forceRefresh { return false }
        guard let maxStale = options.maxStale else { return true }
        return stored.staleness <= maxStale
    }

    /// An entry just read from Redis (within its servable window: the script and the fast path
    /// checked it on the server clock).
    static func served(_ stored: StoredEntry, _ source: CacheSource) -> Outcome {
        Outcome(value: stored.value, source: source, age: stored.age, freshUntil: stored.freshUntil, remainingFreshness: stored.remainingFreshness)
    }

    /// An entry held by the near-cache, at `instant` (its age and remaining freshness by the upper
    /// bound of the server's clock).
    static func served(_ held: NearCacheHit, at instant: NearInstant) -> Outcome {
        let serverNow = held.serverTimeUpperBound(at: instant)
        let remaining = held.freshDeadline.nanoseconds(since: instant)
        return Outcome(value: held.value, source: .freshHitNear, age: .milliseconds(max(0, serverNow &- held.createdAt)),
                       freshUntil: held.freshUntil, remainingFreshness: .nanoseconds(max(0, remaining)))
    }

    /// A stale copy held while waiting or computing, served as a fail-safe only while it is still
    /// within its servable window (fresh-until + staleFor, on the server clock, aged by the time it
    /// was held here): no answer is ever older than the policy allows. `nil` when it is too old.
    static func fallback(_ stored: StoredEntry?, _ source: CacheSource) -> Outcome? {
        guard let stored else { return nil }
        let now = ContinuousClock.now
        guard stored.isServable(at: now) else { return nil }
        let aged = stored.aged(to: now)
        return Outcome(value: aged.value, source: source, age: aged.age, freshUntil: aged.freshUntil, remainingFreshness: aged.remainingFreshness)
    }

    /// Runs a read once more, on a fresh connection, when it failed with a timeout or a dropped
    /// connection: a command that timed out discards its multiplexed connection and fails every
    /// other command on it, though the server is usually fine. Only a second failure (the server
    /// really is unreachable or stalled) lets the caller fail open; one slow command does not turn
    /// every request in flight into an uncoordinated upstream call.
    ///
    /// A retried `get_or_lock` that had run on the server may have taken a lock whose token this
    /// caller never saw: it then waits for that lock like any follower, and takes it over at its
    /// TTL (the cost of an orphaned lock, which failing open would not avoid either).
    func retryingOnce<T>(_ read: () async throws -> T) async throws -> T {
        do {
            return try await read()
        } catch let error as RedisError where (error.code == .timeout || error.code == .connection) && !Task.isCancelled {
            noteReadRetry(error)
            return try await read()
        }
    }

    /// Counts and logs a read retried on a fresh connection after `error`.
    func noteReadRetry(_ error: RedisError) {
        diagnosticsBox.update { $0.redisRetries += 1 }
        metrics.redisRetries.increment()
        logger.debug("retrying a Redis read on a fresh connection", metadata: ["error": "\(error.message)"])
    }

    /// Redis cannot coordinate this request: unreachable, too slow, shutting down, or out of memory
    /// (`-OOM` under `maxmemory` with `noeviction`, or when eviction cannot free enough), so it
    /// cannot take the lock. The request then fails open or closed as ``CachePolicy/redisUnavailable`` says.
    static func meansUnavailable(_ error: RedisError) -> Bool {
        error.code == .connection || error.code == .timeout || error.code == .shutdown || isOutOfMemory(error)
    }

    /// Redis refused a write because it is at `maxmemory`.
    static func isOutOfMemory(_ error: RedisError) -> Bool {
        error.code == .server && error.message.hasPrefix("OOM ")
    }

}
