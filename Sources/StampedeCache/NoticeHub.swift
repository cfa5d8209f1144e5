package import Logging
import NIOCore
package import RedisClient
import Synchronization

/// The process's listener for cache notices: one per `RedisClient`, shared by every namespace's
/// cache on that client. Followers wait here for completion notices.
///
/// Notices travel by sharded pub/sub (`SPUBLISH` from the scripts, `SSUBSCRIBE` here through the
/// client's ``ShardedSubscriber``). Each namespace has its channel (`stampede:notify:<namespace>`,
/// so an ACL can confine a tenant to `stampede:notify:<namespace>*`): on one server it carries every
/// notice; on a cluster it carries generation notices, and an entry's notices go to the
/// namespace's channel for the entry's slot (`stampede:notify:<namespace>:{<slot tag>}`), which a
/// follower subscribes, on the node serving the slot, the first time it waits on that slot. Slot
/// channels nobody has waited on for ``idleChannelLifetime`` are unsubscribed. No task consumes a
/// stream, and no namespace adds a timer or a loop. Entry ids carry their namespace, so one table
/// of waiters serves every namespace.
///
/// Subscribing is idempotent: concurrent ``ensureSubscribed(_:)`` calls for a channel share one
/// `SSUBSCRIBE`. A channel is subscribed only while a cache holds it; the last
/// ``unregister(_:)`` sends `SUNSUBSCRIBE`, and nothing subscribes it again afterwards.
///
/// A notice that arrived between a follower's get-or-lock and its registration is not lost: recent
/// notices are remembered for a few seconds and a follower registering with an earlier `since`
/// wakes at once. Waits honour task cancellation and time out on the client's event loop (no
/// sleeping task per waiter).
package final class NoticeHub: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Wake, Never>
        /// The channel its notice comes on (a dropped subscription wakes its waiters to re-check).
        var channel: String
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
        /// The registrations holding it; it is unsubscribed when the last one lets go.
        var holders: Set<UInt64> = []
        var subscription: Subscription = .none
        /// When a follower last waited on it (slot channels idle for ``idleChannelLifetime`` are released).
        var lastUsed = ContinuousClock.now
    }

    private struct State {
        var waiters: [String: [UInt64: Waiter]] = [:]
        /// Entry id → the latest notice about it and when it arrived.
        var recent: [String: (notice: Notice, at: ContinuousClock.Instant)] = [:]
        var channels: [String: Channel] = [:]
        /// Namespace channel → the `gen|N` observers registered on it.
        var observers: [String: [UInt64: @Sendable (Int64) -> Void]] = [:]
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
    /// How long a slot channel stays subscribed after a follower last waited on it.
    package static let idleChannelLifetime: Duration = .seconds(300)

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
            state.channels[channel, default: Channel()].holders.insert(id)
            state.observers[channel, default: [:]][id] = onGeneration
            return Registration(channel: channel, id: id)
        }
    }

    /// Withdraws a registration from its namespace channel and from every slot channel it held;
    /// each channel left without holders is unsubscribed and is not subscribed again (until someone
    /// holds it anew).
    package func unregister(_ registration: Registration) {
        let released: [(String, UInt64)] = state.withLock { state in
            state.observers[registration.channel]?[registration.id] = nil
            if state.observers[registration.channel]?.isEmpty == true { state.observers[registration.channel] = nil }
            var released: [(String, UInt64)] = []
            for (name, var channel) in state.channels where channel.holders.contains(registration.id) {
                channel.holders.remove(registration.id)
                guard channel.holders.isEmpty else {
                    state.channels[name] = channel
                    continue
                }
                state.channels[name] = nil
                // A SSUBSCRIBE under way sees the channel gone when it completes.
                if case .subscribed(let listener) = channel.subscription { released.append((name, listener)) }
            }
            return released
        }
        for (name, listener) in released { client.shardSubscriber.unsubscribe(listener: listener, from: name) }
    }

    /// Makes `registration` a holder of `channel` (a slot channel of its namespace) and subscribes it.
    /// - Returns: whether this call subscribed it (it was not subscribed before): a notice published
    ///   before that moment was not heard, so the caller re-checks before waiting.
    package func ensureSubscribed(_ channel: String, heldBy registration: Registration) async throws -> Bool {
        let wasSubscribed = state.withLock { state -> Bool in
            guard state.channels[registration.channel]?.holders.contains(registration.id) == true else { return true }  // unregistered: nothing to do
            state.channels[channel, default: Channel()].holders.insert(registration.id)
            state.channels[channel]!.lastUsed = .now
            if case .subscribed = state.channels[channel]!.subscription { return true }
            return false
        }
        if wasSubscribed { return false }
        return try await ensureSubscribed(channel)
    }

    /// Unsubscribes the slot channels no follower has waited on for `lifetime` (the namespace
    /// channels stay). Called from the caches' background tick.
    package func releaseIdleChannels(olderThan lifetime: Duration = NoticeHub.idleChannelLifetime) {
        let now = ContinuousClock.now
        let released: [(String, UInt64)] = state.withLock { state in
            let waited = Set(state.waiters.values.flatMap { $0.values.map(\.channel) })
            var released: [(String, UInt64)] = []
            for (name, channel) in state.channels where state.observers[name] == nil && !waited.contains(name) && now - channel.lastUsed > lifetime {
                guard case .subscribed(let listener) = channel.subscription else { continue }
                state.channels[name] = nil
                released.append((name, listener))
            }
            return released
        }
        for (name, listener) in released { client.shardSubscriber.unsubscribe(listener: listener, from: name) }
    }

    /// How many channels this process has subscribed for notices (tests and diagnostics).
    package var subscribedChannelCount: Int {
        state.withLock { state in
            state.channels.values.filter { if case .subscribed = $0.subscription { return true } else { return false } }.count
        }
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
                let listener = try await client.shardSubscriber.subscribe(
                    to: channel,
                    handler: { [weak self] event in self?.handle(event, on: channel) },
                    onEnd: { [weak self] in self?.subscriberClosed() }
                )
                let (waiters, orphaned) = state.withLock { state -> ([CheckedContinuation<Void, any Error>], Bool) in
                    guard case .subscribing(let waiters) = state.channels[channel]?.subscription else { return ([], true) }
                    state.channels[channel]!.subscription = .subscribed(listener: listener)
                    return (Array(waiters.values), false)
                }
                if orphaned { client.shardSubscriber.unsubscribe(listener: listener, from: channel) }
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
            wake(.reconnected, onChannel: channel)
        case .message(let message):
            if message.payload.readableBytesView.starts(with: "probe|".utf8) { return }  // a permission check's SPUBLISH
            guard let (entry, notice) = Notice.parse(message.payload) else {
                logger.warning("ignoring an unparseable notice", metadata: ["channel": "\(channel)"])
                return
            }
            if case .generation(let generation) = notice {
                let observers = state.withLock { Array(($0.observers[channel] ?? [:]).values) }
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
        wake(.reconnected, onChannel: nil)
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

    /// Wakes the waiters on `channel` (everyone for `nil`).
    private func wake(_ wake: Wake, onChannel channel: String?) {
        let all = state.withLock { state -> [Waiter] in
            guard let channel else {
                defer { state.waiters = [:] }
                return state.waiters.values.flatMap(\.values)
            }
            var woken: [Waiter] = []
            for (entry, waiting) in state.waiters {
                let (matching, others) = (waiting.filter { $0.value.channel == channel }, waiting.filter { $0.value.channel != channel })
                guard !matching.isEmpty else { continue }
                woken += matching.values
                state.waiters[entry] = others.isEmpty ? nil : others
            }
            return woken
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

    /// Waits for a notice about `entry` (coming on `channel`) published after `since` by a
    /// computation with a fence token of at least `minimumToken` (older `done`/`fail` notices,
    /// possibly delivered late, are ignored), or until `timeout`, or until the task is cancelled
    /// (``Wake/cancelled``).
    package func wait(for entry: String, on channel: String, since: ContinuousClock.Instant, minimumToken: Int64 = 0, timeout: Duration) async -> Wake {
        let id = state.withLock { state in
            state.channels[channel]?.lastUsed = .now
            return state.makeID()
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let immediate = state.withLock { state -> Wake? in
                    if Task.isCancelled { return .cancelled }
                    if let seen = state.recent[entry], seen.at >= since, Self.concerns(seen.notice, minimumToken: minimumToken) { return .notice(seen.notice) }
                    state.waiters[entry, default: [:]][id] = Waiter(continuation: continuation, channel: channel, timer: nil, minimumToken: minimumToken)
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
