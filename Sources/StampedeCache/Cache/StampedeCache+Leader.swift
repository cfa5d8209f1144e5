import Logging
import NIOCore
import RedisClient
import Synchronization
import Tracing

extension StampedeCache {
    /// This caller holds the lock: compute and commit in a task the cache owns, and return the
    /// outcome. The caller may leave (cancellation); the computation still commits, for the callers
    /// that joined this flight and for the fleet.
    func lead(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, fallback: StoredEntry?,
        in flightContext: FlightCoalescer<Outcome>.Context,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        let hold = fallback == nil ? Duration.zero : policy.failSafeThrottle
        // The computation runs in a task the cache owns: it continues the caller's trace explicitly.
        let trace = ServiceContext.current ?? .topLevel
        let inBackground = policy.commitInBackground
        return try await detached(flightContext, cancelWhenAbandoned: false) { work in
            var answer: (@Sendable (Outcome) -> Void)?
            if inBackground { answer = { outcome in work.complete(.success(outcome)) } }
            return try await self.computeAndCommit(
                key: key, entry: entry, token: token, options: options, fallback: fallback, hold: hold, trace: trace,
                answerBeforeCommit: answer, compute: compute
            )
        }
    }

    func startRefresh(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, stale: StoredEntry,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) {
        diagnosticsBox.update { $0.refreshesStarted += 1 }
        let trace = ServiceContext.current ?? .topLevel
        _ = background.spawn {
            try await self.computeAndCommit(key: key, entry: entry, token: token, options: options, fallback: stale, hold: self.policy.failSafeThrottle, trace: trace, compute: compute)
        }
    }

    /// Computes under the lock `token` and commits, traced as a `stampede.cache.compute` span in
    /// `trace` (attributes: `stampede.namespace`, `stampede.fence_token`, `stampede.outcome`) with
    /// a `stampede.cache.commit` child; the compute closure sees its ``ComputationContext`` in the
    /// span's `ServiceContext`.
    /// - Parameter answerBeforeCommit: given, a value to be stored is passed to it before the commit
    ///   is sent (``CachePolicy/commitInBackground``), and held in ``pendingCommits`` until the
    ///   commit is answered.
    func computeAndCommit(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, fallback: StoredEntry?, hold: Duration,
        trace: ServiceContext, answerBeforeCommit: (@Sendable (Outcome) -> Void)? = nil,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        var context = trace
        context.stampedeComputation = ComputationContext(namespace: namespace, key: key, fenceToken: token, liveStreamKey: entry.liveStream(token: token))
        return try await withSpan("stampede.cache.compute", context: context, ofKind: .internal) { span in
            if span.isRecording {
                span.attributes["stampede.namespace"] = namespace
                span.attributes["stampede.fence_token"] = token
            }
            let outcome = try await untracedComputeAndCommit(
                key: key, entry: entry, token: token, options: options, fallback: fallback, hold: hold,
                answerBeforeCommit: answerBeforeCommit, compute: compute
            )
            if span.isRecording {
                span.attributes["stampede.outcome"] = outcome.source.label
            }
            return outcome
        }
    }

    private func untracedComputeAndCommit(
        key: String, entry: EntryKeys, token: Int64, options: CacheRequestOptions, fallback: StoredEntry?, hold: Duration,
        answerBeforeCommit: (@Sendable (Outcome) -> Void)?,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        diagnosticsBox.update { $0.computations += 1 }
        let started = ContinuousClock.now
        let computed: Computed<ByteBuffer>
        do {
            liveAnnouncements.announce(entry.id, FollowedComputation(namespace: namespace, key: key, fenceToken: token, liveStreamKey: entry.liveStream(token: token)))
            defer { liveAnnouncements.withdraw(entry.id, token: token) }
            computed = try await withHardTimeout(policy.computeTimeout, compute)
        } catch {
            let timedOut = error is ComputeTimedOut
            // A computation that ran out its computeTimeout is not retried by its followers: they have
            // already waited that long, and the upstream that just answered too slowly (it may even
            // have answered, too late, and been paid) is unlikely to be faster for them.
            let retryable = !timedOut && ((error as? any RetryClassifiedError)?.retryCanSucceed ?? true)
            diagnosticsBox.update { $0.failedComputations += 1 }
            metrics.computation(timedOut ? "timeout" : "failed")
            let message = timedOut ? "timed out after \(policy.computeTimeout)" : String(describing: error)
            logger.warning("computation failed; releasing the lock", metadata: ["key": "\(key)", "error": "\(message)", "retryable": "\(retryable)"])
            do {
                try await redis.execute(Release(entry, token: token, channel: await noticeChannel(for: entry), failure: message, retryable: retryable, hold: hold))
            } catch {
                logger.warning("could not release the lock; it expires by its TTL", metadata: ["key": "\(key)", "error": "\(error)"])
            }
            if let served = Self.fallback(fallback, .staleAfterFailure(reason: message)) { return served }
            if timedOut { throw CacheError.computationTimedOut(key: key, timeout: policy.computeTimeout) }
            throw error
        }
        let computeTime = ContinuousClock.now - started
        metrics.computeTime.recordNanoseconds(computeTime.nanosecondsClamped)
        let value = computed.value
        guard value.readableBytes <= policy.maxValueBytes else {
            metrics.computation("too_large")
            let error = CacheError.valueTooLarge(key: key, size: value.readableBytes, limit: policy.maxValueBytes)
            _ = try? await redis.execute(Release(entry, token: token, channel: await noticeChannel(for: entry), failure: error.description, retryable: false))
            throw error
        }
        if case .deliverWithoutStoring(_, let reason) = computed {
            metrics.computation("not_stored")
            await handOff(key: key, entry: entry, token: token, value: value, reason: reason)
            return Outcome(value: value, source: .computedNotStored, age: .zero, freshUntil: nil, notCachedBecause: reason)
        }
        metrics.computation("ok")
        var freshFor = options.freshFor ?? policy.freshFor
        if case .storeWithFreshness(_, let own) = computed { freshFor = max(.milliseconds(1), min(own, freshFor)) }
        if let answerBeforeCommit {
            // The commit will store it fresh for at least freshFor less the largest jitter, from a
            // server instant no earlier than now.
            let provisional = Outcome(value: value, source: .computed, age: .zero, freshUntil: nil, remainingFreshness: freshFor * (1 - policy.ttlJitter))
            // Held before the caller is answered: a caller it prompts to ask again finds it.
            pendingCommits.insert(entry.id, provisional)
            answerBeforeCommit(provisional)
        }
        defer { if answerBeforeCommit != nil { pendingCommits.remove(entry.id) } }
        let span = startSpan("stampede.cache.commit", ofKind: .client)
        if span.isRecording {
            span.attributes["db.system"] = "redis"
            span.attributes["stampede.fence_token"] = token
        }
        defer { span.end() }
        do {
            let reply = try await redis.execute(Commit(
                entry, token: token, value: value, policy: policy, freshFor: freshFor,
                computeTime: computeTime, channel: await noticeChannel(for: entry)
            ))
            if span.isRecording {
                span.attributes["stampede.commit"] = if case .accepted = reply { "accepted" } else { "rejected" }
            }
            // This process's own near-cache must not answer the old value until Redis's
            // invalidation of the write arrives.
            near?.drop(valueKey: entry.value)
            switch reply {
            case .accepted(let freshUntil, let staleUntil, let now):
                if !options.tags.isEmpty { await index(entry, tags: options.tags, retention: .milliseconds(staleUntil - now)) }
                return Outcome(value: value, source: .computed, age: .zero, freshUntil: freshUntil, remainingFreshness: .milliseconds(max(0, freshUntil - now)))
            case .rejected(let reason, let currentFence):
                diagnosticsBox.update { $0.rejectedCommits += 1 }
                metrics.rejectedCommit(reason)
                logger.warning("commit rejected by fencing; a newer value stays", metadata: ["key": "\(key)", "token": "\(token)", "fence": "\(currentFence)", "reason": "\(reason)"])
                return Outcome(value: value, source: .computed, age: .zero, freshUntil: nil, notCachedBecause: "a newer computation's value is stored (fence \(currentFence) > token \(token))")
            }
        } catch {
            // The value was computed but could not be stored. The lock must not outlive this: hand
            // the value to the waiting followers (which releases the lock), or at least release it.
            let message = error.message
            span.recordError(error)
            diagnosticsBox.update { $0.failedCommits += 1 }
            metrics.commitFailures.increment()
            logger.error("commit failed; the value is returned but not cached", metadata: ["key": "\(key)", "error": "\(message)"])
            let reason = "the commit failed: \(message)"
            await handOff(key: key, entry: entry, token: token, value: value, reason: reason)
            return Outcome(value: value, source: .computed, age: .zero, freshUntil: nil, notCachedBecause: reason)
        }
    }

    /// Gives a computed value that will not be stored to the followers waiting for `token` and
    /// releases the lock; if Redis refuses even that, releases the lock with a failure notice.
    func handOff(key: String, entry: EntryKeys, token: Int64, value: ByteBuffer, reason: String) async {
        do {
            try await redis.execute(HandOff(entry, token: token, value: value, reason: reason, lifetime: Self.handoffLifetime, channel: await noticeChannel(for: entry)))
            diagnosticsBox.update { $0.handoffsGiven += 1 }
            return
        } catch {
            logger.warning("could not hand the value to waiting followers; releasing the lock", metadata: ["key": "\(key)", "error": "\(error)"])
        }
        do {
            try await redis.execute(Release(entry, token: token, channel: await noticeChannel(for: entry), failure: reason))
        } catch {
            logger.warning("could not release the lock; it expires by its TTL", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    func index(_ entry: EntryKeys, tags: [String], retention: Duration) async {
        let ttl = RedisArgument((retention + .seconds(60)).wholeMilliseconds)
        for tag in tags {
            let key = RedisArgument(keySpace.tagKey(tag))
            do {
                try await redis.send("SADD", key, RedisArgument(entry.id))
                try await redis.send("PEXPIRE", key, ttl, "NX")
                try await redis.send("PEXPIRE", key, ttl, "GT")
            } catch {
                logger.warning("could not index a tag", metadata: ["tag": "\(tag)", "error": "\(error)"])
            }
        }
    }

    /// Deletes exactly the key of the entry that holds something foreign (a valid value is never
    /// deleted because its lock or fence key is broken; a deleted fence counter is re-seeded above
    /// the entry's committed fence at the next issuance).
    func repair(_ entry: EntryKeys, _ role: EntryKeyRole, key: String, reason: String) async throws {
        metrics.corrupt.increment()
        diagnosticsBox.update { $0.corruptEntries += 1 }
        let redisKey: String
        switch role {
        case .value: redisKey = entry.value
        case .lock: redisKey = entry.lock
        case .fence: redisKey = entry.fence
        }
        logger.error("foreign or corrupt data in the entry's \(role.rawValue) key; deleting that key only", metadata: ["key": "\(key)", "redisKey": "\(redisKey)", "reason": "\(reason)"])
        do {
            try await redis.send("DEL", RedisArgument(redisKey))
        } catch {
            throw CacheError.corruptEntry(key: key, reason: "\(reason) (in the \(role.rawValue) key \(redisKey), which could not be deleted: \(error))")
        }
    }

    func failOpen(
        key: String, error: RedisError, in flightContext: FlightCoalescer<Outcome>.Context,
        compute: @escaping @Sendable () async throws -> Computed<ByteBuffer>
    ) async throws -> Outcome {
        metrics.redisUnavailable.increment()
        guard let limiter else { throw CacheError.redisUnavailable(error, key: key) }
        logger.warning("Redis unavailable; computing without the cache (fail-open)", metadata: ["key": "\(key)", "error": "\(error.message)"])
        let timeout = policy.computeTimeout
        // Nothing will be stored: when every caller waiting for it has gone, the computation is cancelled.
        return try await detached(flightContext, cancelWhenAbandoned: true) { _ in
            let value = try await limiter.withPermit {
                do {
                    return try await withHardTimeout(timeout, compute)
                } catch is ComputeTimedOut {
                    throw CacheError.computationTimedOut(key: key, timeout: timeout)
                }
            }
            return Outcome(value: value.value, source: .uncachedRedisUnavailable, age: .zero, freshUntil: nil, notCachedBecause: "Redis is unavailable: \(error.message)")
        }
    }


    /// The shard channel for notices about `entry` (the namespace channel on one server; on a
    /// cluster, the namespace's channel for the entry's slot). Deciding whether the client talks to a
    /// cluster connects once, at most; a client that cannot reach Redis gets the one-server channel,
    /// and its command fails anyway.
    func noticeChannel(for entry: EntryKeys) async -> String {
        keySpace.noticeChannel(for: entry, cluster: (try? await redis.isCluster()) ?? false)
    }
}
