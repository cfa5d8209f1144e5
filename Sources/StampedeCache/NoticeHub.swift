package import Logging
package import NIOCore
package import RedisClient

/// A notice published by a script on the namespace channel.
package enum Notice: Sendable, Equatable {
    case done(token: Int64)
    /// The computation failed; `retryable` is false when a retry cannot fix it (`fatal|…`).
    case failed(token: Int64, message: String, retryable: Bool)
    /// The computation's value was handed off (`P{E}:d`) without being stored, for `reason`.
    case delivered(token: Int64, reason: String)
    case invalidated
    case generation(Int64)

    /// Parses `done|E|token`, `fail|E|token|message`, `fatal|E|token|message`, `deliver|E|token|reason`,
    /// `inval|E`, `gen|N`; returns the entry id and notice.
    package static func parse(_ payload: ByteBuffer) -> (entry: String, notice: Notice)? {
        let text = String(buffer: payload)
        let parts = text.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "done" where parts.count == 3:
            guard let token = Int64(parts[2]) else { return nil }
            return (parts[1], .done(token: token))
        case "fail" where parts.count == 4, "fatal" where parts.count == 4:
            guard let token = Int64(parts[2]) else { return nil }
            return (parts[1], .failed(token: token, message: parts[3], retryable: parts[0] == "fail"))
        case "deliver" where parts.count == 4:
            guard let token = Int64(parts[2]) else { return nil }
            return (parts[1], .delivered(token: token, reason: parts[3]))
        case "inval" where parts.count == 2:
            return (parts[1], .invalidated)
        case "gen" where parts.count == 2:
            guard let generation = Int64(parts[1]) else { return nil }
            return ("", .generation(generation))
        default:
            return nil
        }
    }
}

/// Why a waiting follower woke up.
package enum Wake: Sendable, Equatable {
    case notice(Notice)
    /// The subscriber reconnected: notices may have been missed, re-check now.
    case reconnected
    /// Nothing arrived within the wait; re-check (the fallback path).
    case timedOut
}

/// The process's listener on one namespace channel: followers wait here for completion notices.
///
/// One subscription per namespace and `RedisClient` (the client's single subscriber connection
/// carries all of them); followers register by entry id. A notice that arrived between a
/// follower's get-or-lock and its registration is not lost: recent notices are remembered for a
/// few seconds and a follower registering with an earlier `since` wakes at once.
package actor NoticeHub {
    private struct Waiter {
        var continuation: CheckedContinuation<Wake, Never>
        var timer: Task<Void, Never>?
        /// `done`/`fail` notices with a lower fence token are about an older computation: ignored.
        var minimumToken: Int64
    }

    /// Whether `notice` is news for a follower waiting for a computation with at least `minimumToken`.
    private static func concerns(_ notice: Notice, minimumToken: Int64) -> Bool {
        switch notice {
        case .done(let token), .failed(let token, _, _), .delivered(let token, _): return token >= minimumToken
        case .invalidated, .generation: return true
        }
    }

    private let client: RedisClient
    private let channel: String
    private let logger: Logger
    private let onGeneration: @Sendable (Int64) -> Void
    private var waiters: [String: [UInt64: Waiter]] = [:]
    private var recent: [String: (notice: Notice, at: ContinuousClock.Instant)] = [:]
    private var nextID: UInt64 = 0
    private var listener: Task<Void, Never>?
    private var subscribed = false
    private static let recentWindow: Duration = .seconds(10)

    package init(client: RedisClient, channel: String, logger: Logger, onGeneration: @escaping @Sendable (Int64) -> Void) {
        self.client = client
        self.channel = channel
        self.logger = logger
        self.onGeneration = onGeneration
    }

    /// Subscribes (once); safe to call again after a failure.
    package func start() async throws {
        guard !subscribed else { return }
        let subscription = try await client.subscriber.subscribe(to: [channel])
        subscribed = true
        listener = Task { [weak self] in
            for await event in subscription {
                guard let self else { return }
                await self.handle(event)
            }
            await self?.subscriptionEnded()
        }
    }

    package var isSubscribed: Bool { subscribed }

    private func subscriptionEnded() {
        subscribed = false
        wakeEveryone(.reconnected)
    }

    private func handle(_ event: RedisPubSubEvent) {
        switch event {
        case .reconnected:
            logger.info("notice channel re-subscribed; waking followers to re-check", metadata: ["channel": "\(channel)"])
            wakeEveryone(.reconnected)
        case .message(let message):
            if message.payload.readableBytesView.starts(with: "probe|".utf8) { return }  // a permission check's PUBLISH
            guard let (entry, notice) = Notice.parse(message.payload) else {
                logger.warning("ignoring an unparseable notice", metadata: ["channel": "\(channel)"])
                return
            }
            if case .generation(let generation) = notice {
                onGeneration(generation)
                return
            }
            deliver(entry: entry, notice: notice)
        }
    }

    package func deliver(entry: String, notice: Notice) {
        let now = ContinuousClock.now
        recent[entry] = (notice, now)
        if recent.count > 4096 { recent = recent.filter { now - $0.value.at < Self.recentWindow } }
        guard let waiting = waiters[entry] else { return }
        var remaining: [UInt64: Waiter] = [:]
        for (id, waiter) in waiting {
            if Self.concerns(notice, minimumToken: waiter.minimumToken) {
                waiter.timer?.cancel()
                waiter.continuation.resume(returning: .notice(notice))
            } else {
                remaining[id] = waiter
            }
        }
        waiters[entry] = remaining.isEmpty ? nil : remaining
    }

    private func wakeEveryone(_ wake: Wake) {
        let all = waiters
        waiters = [:]
        for waiter in all.values.flatMap(\.values) {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: wake)
        }
    }

    /// The failure message of the latest notice about `entry`, if it was a failure within `window`.
    package func recentFailure(for entry: String, within window: Duration) -> String? {
        guard let seen = recent[entry], ContinuousClock.now - seen.at <= window, case .failed(_, let message, _) = seen.notice else { return nil }
        return message
    }

    /// Waits for a notice about `entry` published after `since` by a computation with a fence token of
    /// at least `minimumToken` (older `done`/`fail` notices, possibly delivered late, are ignored), or until `timeout`.
    package func wait(for entry: String, since: ContinuousClock.Instant, minimumToken: Int64 = 0, timeout: Duration) async -> Wake {
        if let seen = recent[entry], seen.at >= since, Self.concerns(seen.notice, minimumToken: minimumToken) { return .notice(seen.notice) }
        nextID += 1
        let id = nextID
        return await withCheckedContinuation { continuation in
            let timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expire(entry: entry, id: id)
            }
            waiters[entry, default: [:]][id] = Waiter(continuation: continuation, timer: timer, minimumToken: minimumToken)
        }
    }

    private func expire(entry: String, id: UInt64) {
        guard let waiter = waiters[entry]?.removeValue(forKey: id) else { return }
        if waiters[entry]?.isEmpty == true { waiters[entry] = nil }
        waiter.continuation.resume(returning: .timedOut)
    }

    package func stop() {
        listener?.cancel()
        listener = nil
        wakeEveryone(.timedOut)
    }
}
