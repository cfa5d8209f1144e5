import Logging
import NIOCore
import RedisClient
import Synchronization
import Tracing

extension StampedeCache {
    /// Waits as a follower. Returns an outcome to serve, or `nil` to re-check with get-or-lock.
    /// - Throws: `CancellationError` when the caller is cancelled while waiting.
    func follow(
        key: String, entry: EntryKeys, since: ContinuousClock.Instant, started: ContinuousClock.Instant,
        lockRemaining: Duration, fallback: StoredEntry?, minimumToken: Int64, retriesLeft: inout Int
    ) async throws -> Outcome? {
        let waited = ContinuousClock.now - started
        let maxWait = policy.effectiveMaxWait
        if waited >= maxWait {
            if let served = Self.fallback(fallback, .staleAfterFailure(reason: "waited \(waited) for another worker")) { return served }
            throw CacheError.waitTimedOut(key: key, waited: waited)
        }
        // A refresh of this entry failed moments ago and its lease is held as a fail-safe throttle:
        // serve the stale value now instead of waiting out the throttle.
        if fallback != nil, policy.failSafeThrottle > .zero,
           let message = hub.recentFailure(for: entry.id, within: policy.failSafeThrottle),
           let served = Self.fallback(fallback, .staleAfterFailure(reason: message)) {
            return served
        }
        let channel = await noticeChannel(for: entry)
        if !hub.isSubscribed(channel), !lifecycle.isClosed {
            do {
                // Just subscribed: a notice published before the subscription was confirmed was not
                // heard, so re-check the entry once before waiting for the next one.
                if try await hub.ensureSubscribed(channel, heldBy: registration) { return nil }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.debug("notice channel unavailable; falling back to re-checks", metadata: ["error": "\(error)"])
            }
        }
        // Wake on the notice; else re-check when the holder's lock would have expired, or at the fallback interval.
        let timeout = min(policy.followerRecheckInterval, lockRemaining + .milliseconds(15), maxWait - waited)
        diagnosticsBox.update { $0.followerWaits += 1 }
        let waitStart = ContinuousClock.now
        let wake = await withSpan("stampede.cache.wait", ofKind: .internal) { span in
            if span.isRecording {
                span.attributes["stampede.namespace"] = namespace
                span.attributes["stampede.awaited_fence_token"] = minimumToken
            }
            let wake = await hub.wait(for: entry.id, on: channel, since: since, minimumToken: minimumToken, timeout: max(timeout, .milliseconds(1)))
            if span.isRecording {
                span.attributes["stampede.wake"] = "\(wake)".prefix(while: { $0 != "(" }).description
            }
            return wake
        }
        metrics.waitTime.recordNanoseconds((ContinuousClock.now - waitStart).nanosecondsClamped)
        switch wake {
        case .notice(.failed(_, let message, let retryable)):
            metrics.wakeup("notice")
            diagnosticsBox.update { $0.wakeupsByNotice += 1 }
            if let served = Self.fallback(fallback, .staleAfterFailure(reason: message)) { return served }
            if retryable, retriesLeft > 0 {
                // Back to get-or-lock: one of the followers becomes the next leader, the rest wait for it.
                retriesLeft -= 1
                diagnosticsBox.update { $0.followerRetries += 1 }
                return nil
            }
            throw CacheError.computationFailedElsewhere(key: key, message: message)
        case .notice(.delivered(let token, let reason)):
            metrics.wakeup("notice")
            diagnosticsBox.update { $0.wakeupsByNotice += 1 }
            do {
                if let value = try await redis.handedOff(entry, token: token) {
                    diagnosticsBox.update { $0.handoffsReceived += 1 }
                    return Outcome(value: value, source: .receivedFromOtherWorker, age: .zero, freshUntil: nil, notCachedBecause: reason)
                }
            } catch {
                logger.debug("could not read a handed-off value; re-checking", metadata: ["key": "\(key)", "error": "\(error)"])
            }
            // Gone already (or unreadable): back to get-or-lock.
        case .notice:
            metrics.wakeup("notice")
            diagnosticsBox.update { $0.wakeupsByNotice += 1 }
        case .reconnected:
            metrics.wakeup("reconnect")
            diagnosticsBox.update { $0.wakeupsByReconnect += 1 }
        case .cancelled:
            throw CancellationError()
        case .timedOut:
            metrics.wakeup("recheck")
            diagnosticsBox.update { $0.wakeupsByRecheck += 1 }
        }
        return nil
    }

}
