package import Logging
import NIOCore
package import RedisClient
import Synchronization

/// The process's listener for cache notices: one per `RedisClient`, shared by every namespace's
/// cache on that client. Followers wait here for completion notices.
///
/// Each namespace keeps its own channel (`stampede:notify:<namespace>`, so an ACL can confine a
/// tenant to its channel), but all of them ride one subscriber connection and one callback
/// listener: no task consumes a stream, and no namespace adds a timer or a loop. Entry ids carry
/// their namespace, so one table of waiters serves every namespace.
///
/// Subscribing is idempotent: concurrent ``ensureSubscribed(_:)`` calls for a channel share one
/// `SUBSCRIBE`. A channel is subscribed only while a cache has it registered; the last
/// ``unregister(_:)`` sends `UNSUBSCRIBE`, and nothing subscribes it again afterwards.
///
/// A notice that arrived between a follower's get-or-lock and its registration is not lost: recent
/// notices are remembered for a few seconds and a follower registering with an earlier `since`
/// wakes at once. Waits honour task cancellation and time out on the client's event loop (no
/// sleeping task per waiter).
package final class NoticeHub: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Wake, Never>
        var timer: Scheduled<Void>?
        /// `done`/`fail` notices with a lower fence token are about an older computation: ignored.
        var minimumToken: Int64
    }

    private enum Subscription {
        case none
        case subscribing(waiters: [UInt64: CheckedContinuation<Void, any Error>])
        case subscribed(listener: UInt64)
    }

    private struct Channel {
        var registrations: [UInt64: @Sendable (Int64) -> Void] = [:]
        var subscription: Subscription = .none
    }

    private struct State {
        var waiters: [String: [UInt64: Waiter]] = [:]
        /// Entry id → the latest notice about it and when it arrived.
        var recent: [String: (notice: Notice, at: ContinuousClock.Instant)] = [:]
        var channels: [String: Channel] = [:]
        var nextID: UInt64 = 0

        mutating func makeID() -> UInt64 {
            nextID += 1
            return nextID
        }
    }

    /// A cache's registration of its channel (see ``register(channel:onGeneration:)``).
    package struct Registration: Sendable, Hashable {
        let channel: String
        let id: UInt64
    }

    private let client: RedisClient
    private let logger: Logger
    private let state = Mutex(State())
    private static let recentWindow: Duration = .seconds(10)

    /// A hub over `client` (tests); caches use ``shared(for:logger:)``.
    package init(client: RedisClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    // MARK: One hub per client

    private final class WeakHub: Sendable {
        weak let hub: NoticeHub?
        init(_ hub: NoticeHub) { self.hub = hub }
    }

    private static let hubs = Mutex<[ObjectIdentifier: WeakHub]>([:])

    /// The hub of `client`, created on first use and shared by every cache on that client while any
    /// of them holds it.
    package static func shared(for client: RedisClient, logger: Logger) -> NoticeHub {
        hubs.withLock { hubs in
            if let hub = hubs[ObjectIdentifier(client)]?.hub, hub.client === client { return hub }
            hubs = hubs.filter { $0.value.hub != nil }
            let hub = NoticeHub(client: client, logger: logger)
            hubs[ObjectIdentifier(client)] = WeakHub(hub)
            return hub
        }
    }

    // MARK: Channels

    /// Registers interest in `channel`; `onGeneration` receives its `gen|N` notices. No I/O: the
    /// channel is subscribed by ``ensureSubscribed(_:)``.
    package func register(channel: String, onGeneration: @escaping @Sendable (Int64) -> Void) -> Registration {
        state.withLock { state in
            let id = state.makeID()
            state.channels[channel, default: Channel()].registrations[id] = onGeneration
            return Registration(channel: channel, id: id)
        }
    }

    /// Withdraws a registration; when it was the channel's last, the channel is unsubscribed and
    /// is not subscribed again (until someone registers it anew).
    package func unregister(_ registration: Registration) {
        let listener: UInt64? = state.withLock { state in
            guard var channel = state.channels[registration.channel] else { return nil }
            channel.registrations[registration.id] = nil
            guard channel.registrations.isEmpty else {
                state.channels[registration.channel] = channel
                return nil
            }
            state.channels[registration.channel] = nil
            if case .subscribed(let listener) = channel.subscription { return listener }
            return nil  // a SUBSCRIBE under way sees the channel gone when it completes
        }
        if let listener { client.subscriber.unsubscribe(listener: listener, from: [registration.channel]) }
    }

    /// Whether `channel` is subscribed now.
    package func isSubscribed(_ channel: String) -> Bool {
        state.withLock { state in
            if case .subscribed = state.channels[channel]?.subscription { return true }
            return false
        }
    }

    /// Subscribes `channel` if it is registered and not yet subscribed. Concurrent callers share one
    /// `SUBSCRIBE`; a caller that is cancelled stops waiting (the `SUBSCRIBE` goes on for the others).
    /// - Returns: whether the channel is subscribed (false when nobody has it registered).
    @discardableResult
    package func ensureSubscribed(_ channel: String) async throws -> Bool {
        enum Step { case done(Bool), perform, wait(UInt64) }
        let waiterID = state.withLock { $0.makeID() }
        let step: Step = state.withLock { state in
            guard let current = state.channels[channel] else { return .done(false) }
            switch current.subscription {
            case .subscribed: return .done(true)
            case .subscribing: return .wait(waiterID)
            case .none:
                state.channels[channel]!.subscription = .subscribing(waiters: [:])
                return .perform
            }
        }
        switch step {
        case .done(let subscribed):
            return subscribed
        case .wait(let id):
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let registered = state.withLock { state -> Bool in
                        guard case .subscribing(var waiters) = state.channels[channel]?.subscription else { return false }
                        if Task.isCancelled { return false }
                        waiters[id] = continuation
                        state.channels[channel]!.subscription = .subscribing(waiters: waiters)
                        return true
                    }
                    if !registered {
                        if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                    }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                    guard case .subscribing(var waiters) = state.channels[channel]?.subscription,
                          let waiter = waiters.removeValue(forKey: id) else { return nil }
                    state.channels[channel]!.subscription = .subscribing(waiters: waiters)
                    return waiter
                }
                waiter?.resume(throwing: CancellationError())
            }
            return isSubscribed(channel)
        case .perform:
            do {
                let listener = try await client.subscriber.subscribe(
                    to: [channel],
                    handler: { [weak self] event in self?.handle(event, on: channel) },
                    onEnd: { [weak self] in self?.subscriberClosed() }
                )
                let (waiters, orphaned) = state.withLock { state -> ([CheckedContinuation<Void, any Error>], Bool) in
                    guard case .subscribing(let waiters) = state.channels[channel]?.subscription else { return ([], true) }
                    state.channels[channel]!.subscription = .subscribed(listener: listener)
                    return (Array(waiters.values), false)
                }
                if orphaned { client.subscriber.unsubscribe(listener: listener, from: [channel]) }
                for waiter in waiters { waiter.resume() }
                return !orphaned
            } catch {
                let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
                    guard case .subscribing(let waiters) = state.channels[channel]?.subscription else { return [] }
                    state.channels[channel]!.subscription = .none
                    return Array(waiters.values)
                }
                for waiter in waiters { waiter.resume(throwing: error) }
                throw error
            }
        }
    }

    private func handle(_ event: RedisPubSubEvent, on channel: String) {
        switch event {
        case .reconnected, .overflow:
            logger.info("notices may have been missed; waking followers to re-check", metadata: ["channel": "\(channel)", "event": "\(event)"])
            wakeEveryone(.reconnected)
        case .message(let message):
            if message.payload.readableBytesView.starts(with: "probe|".utf8) { return }  // a permission check's PUBLISH
            guard let (entry, notice) = Notice.parse(message.payload) else {
                logger.warning("ignoring an unparseable notice", metadata: ["channel": "\(channel)"])
                return
            }
            if case .generation(let generation) = notice {
                let observers = state.withLock { Array($0.channels[channel]?.registrations.values ?? [:].values) }
                for observe in observers { observe(generation) }
                return
            }
            deliver(entry: entry, notice: notice)
        }
    }

    /// The client's subscriber was closed: no channel is subscribed any more; everyone re-checks.
    private func subscriberClosed() {
        state.withLock { state in
            for name in state.channels.keys {
                if case .subscribed = state.channels[name]!.subscription { state.channels[name]!.subscription = .none }
            }
        }
        wakeEveryone(.reconnected)
    }

    // MARK: Waiting

    /// Whether `notice` is news for a follower waiting for a computation with at least `minimumToken`.
    private static func concerns(_ notice: Notice, minimumToken: Int64) -> Bool {
        switch notice {
        case .done(let token), .failed(let token, _, _), .delivered(let token, _): return token >= minimumToken
        case .invalidated, .generation: return true
        }
    }

    /// Wakes the followers of `entry` that `notice` concerns, and remembers it for late registrants.
    package func deliver(entry: String, notice: Notice) {
        let now = ContinuousClock.now
        let woken = state.withLock { state -> [Waiter] in
            state.recent[entry] = (notice, now)
            if state.recent.count > 4096 { state.recent = state.recent.filter { now - $0.value.at < Self.recentWindow } }
            guard let waiting = state.waiters[entry] else { return [] }
            var woken: [Waiter] = []
            var remaining: [UInt64: Waiter] = [:]
            for (id, waiter) in waiting {
                if Self.concerns(notice, minimumToken: waiter.minimumToken) { woken.append(waiter) } else { remaining[id] = waiter }
            }
            state.waiters[entry] = remaining.isEmpty ? nil : remaining
            return woken
        }
        for waiter in woken {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .notice(notice))
        }
    }

    private func wakeEveryone(_ wake: Wake) {
        let all = state.withLock { state -> [Waiter] in
            defer { state.waiters = [:] }
            return state.waiters.values.flatMap(\.values)
        }
        for waiter in all {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: wake)
        }
    }

    /// The failure message of the latest notice about `entry`, if it was a failure within `window`.
    package func recentFailure(for entry: String, within window: Duration) -> String? {
        state.withLock { state in
            guard let seen = state.recent[entry], ContinuousClock.now - seen.at <= window, case .failed(_, let message, _) = seen.notice else { return nil }
            return message
        }
    }

    /// The number of followers waiting now (tests and diagnostics).
    package var waiterCount: Int { state.withLock { $0.waiters.values.reduce(0) { $0 + $1.count } } }

    /// Waits for a notice about `entry` published after `since` by a computation with a fence token of
    /// at least `minimumToken` (older `done`/`fail` notices, possibly delivered late, are ignored), or
    /// until `timeout`, or until the task is cancelled (``Wake/cancelled``).
    package func wait(for entry: String, since: ContinuousClock.Instant, minimumToken: Int64 = 0, timeout: Duration) async -> Wake {
        let id = state.withLock { $0.makeID() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let immediate = state.withLock { state -> Wake? in
                    if Task.isCancelled { return .cancelled }
                    if let seen = state.recent[entry], seen.at >= since, Self.concerns(seen.notice, minimumToken: minimumToken) { return .notice(seen.notice) }
                    state.waiters[entry, default: [:]][id] = Waiter(continuation: continuation, timer: nil, minimumToken: minimumToken)
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                let timer = client.eventLoop.scheduleTask(in: .nanoseconds(max(1, timeout.nanosecondsClamped))) { [weak self] () -> Void in
                    self?.end(entry: entry, id: id, with: .timedOut)
                }
                let stillWaiting = state.withLock { state -> Bool in
                    guard state.waiters[entry]?[id] != nil else { return false }
                    state.waiters[entry]![id]!.timer = timer
                    return true
                }
                if !stillWaiting { timer.cancel() }
            }
        } onCancel: {
            end(entry: entry, id: id, with: .cancelled)
        }
    }

    private func end(entry: String, id: UInt64, with wake: Wake) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiters[entry]?.removeValue(forKey: id) else { return nil }
            if state.waiters[entry]?.isEmpty == true { state.waiters[entry] = nil }
            return waiter
        }
        guard let waiter else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: wake)
    }
}
