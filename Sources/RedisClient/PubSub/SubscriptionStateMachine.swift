/// The subscriber's per-channel state: who listens, what the server has, which `SUBSCRIBE` or
/// `UNSUBSCRIBE` is on its way, and which callers wait for a confirmation.
///
/// A value type with no I/O: every event (a listener added or removed, a confirmation, a lost
/// connection) returns the commands to send, and ``RedisSubscriber`` sends them. **At most one
/// command per channel is in flight.** What listeners want meanwhile is remembered and applied when
/// that command is confirmed, so an `UNSUBSCRIBE` can never overtake a later `SUBSCRIBE` of the same
/// channel (and leave a listener that the server no longer feeds), however the sends are scheduled.
///
/// Commands carry the connection generation they were sent on; confirmations from an older
/// connection are ignored (its subscriptions died with it).
package struct SubscriptionStateMachine<Listener, Waiter> {
    /// Channels (`SUBSCRIBE`), patterns (`PSUBSCRIBE`) and shard channels (`SSUBSCRIBE`, Redis 7+)
    /// are separate name spaces.
    package enum Kind: Hashable, Sendable {
        case channel, pattern, shardChannel

        /// The verb that subscribes or unsubscribes a name of this kind.
        package func verb(subscribe: Bool) -> String {
            switch self {
            case .channel: subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE"
            case .pattern: subscribe ? "PSUBSCRIBE" : "PUNSUBSCRIBE"
            case .shardChannel: subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE"
            }
        }
    }

    /// A channel or a pattern.
    package struct Name: Hashable, Sendable {
        package var kind: Kind
        package var name: String

        package init(_ kind: Kind, _ name: String) {
            self.kind = kind
            self.name = name
        }
    }

    /// A command to send on the connection of `generation`.
    package struct Command: Equatable, Sendable {
        package var name: Name
        package var subscribe: Bool
        package var generation: UInt64

        /// The command as Redis reads it.
        package var verb: String { name.kind.verb(subscribe: subscribe) }
    }

    /// What the server has for one name, as far as this side knows.
    package enum ServerState: Equatable, Sendable {
        case unsubscribed, subscribing, subscribed, unsubscribing
    }

    private struct Entry {
        var server: ServerState = .unsubscribed
        var listeners: [UInt64: Listener] = [:]
        /// Callers (by listener id) waiting for this name's `SUBSCRIBE` to be confirmed.
        var waiting: Set<UInt64> = []
    }

    /// A caller waiting until each of its names is confirmed.
    private struct Pending {
        var waiter: Waiter
        var names: [Name]
        var unconfirmed: Set<Name>
    }

    private var entries: [Name: Entry] = [:]
    private var pending: [UInt64: Pending] = [:]
    private var inFlight = 0
    /// The current connection's generation; bumped when a connection is lost.
    package private(set) var generation: UInt64 = 0

    package init() {}

    /// Commands sent and not yet confirmed (tests and diagnostics).
    package var commandsInFlight: Int { inFlight }

    /// What the server has for `name` (tests).
    package func serverState(of name: Name) -> ServerState { entries[name]?.server ?? .unsubscribed }

    /// How many listeners `name` has.
    package func listenerCount(of name: Name) -> Int { entries[name]?.listeners.count ?? 0 }

    /// The listeners a message on `name` goes to.
    package func listeners(of name: Name) -> [Listener] { entries[name].map { Array($0.listeners.values) } ?? [] }

    /// Every listener once (a listener of several names is listed once).
    package var everyListener: [Listener] {
        var byID: [UInt64: Listener] = [:]
        for entry in entries.values { byID.merge(entry.listeners) { first, _ in first } }
        return Array(byID.values)
    }

    /// Every name that has listeners.
    package var wantedNames: [Name] { entries.filter { !$0.value.listeners.isEmpty }.map(\.key) }

    /// What ``add(id:listener:to:waiter:)`` decided for the caller.
    package enum Admission {
        /// Every name was already subscribed: the caller does not wait (the waiter is not kept).
        case ready
        /// The caller's waiter is resumed by a later ``confirmed(_:error:)``.
        case waiting
    }

    /// Adds listener `id` to `names`. Names nobody listened to are subscribed; names whose
    /// `UNSUBSCRIBE` is on its way are subscribed again once it is confirmed.
    package mutating func add(id: UInt64, listener: Listener, to names: [Name], waiter: Waiter) -> (Admission, [Command]) {
        var commands: [Command] = []
        var unconfirmed: Set<Name> = []
        for name in names {
            var entry = entries[name] ?? Entry()
            entry.listeners[id] = listener
            switch entry.server {
            case .subscribed:
                break
            case .subscribing, .unsubscribing:
                entry.waiting.insert(id)
                unconfirmed.insert(name)
            case .unsubscribed:
                entry.server = .subscribing
                entry.waiting.insert(id)
                unconfirmed.insert(name)
                commands.append(send(name, subscribe: true))
            }
            entries[name] = entry
        }
        if unconfirmed.isEmpty { return (.ready, commands) }
        pending[id] = Pending(waiter: waiter, names: names, unconfirmed: unconfirmed)
        return (.waiting, commands)
    }

    /// Removes listener `id` from `names`. A name left without listeners is unsubscribed, at once if
    /// nothing is in flight for it, otherwise once its command is confirmed.
    package mutating func remove(id: UInt64, from names: [Name]) -> [Command] {
        var commands: [Command] = []
        for name in names {
            guard var entry = entries[name] else { continue }
            entry.listeners[id] = nil
            entry.waiting.remove(id)
            entries[name] = entry
            commands += settle(name)
        }
        return commands
    }

    /// A command for `name` was answered: `error` is `nil` when the server confirmed it. Returns the
    /// waiters to resume (with `nil` for success or the error that ends their subscription) and the
    /// commands to send next. A confirmation from an older connection changes nothing.
    package mutating func confirmed(_ command: Command, error: RedisError?) -> (resume: [(Waiter, RedisError?)], commands: [Command]) {
        guard command.generation == generation else { return ([], []) }
        inFlight -= 1
        guard var entry = entries[command.name] else { return ([], []) }
        var resume: [(Waiter, RedisError?)] = []
        var commands: [Command] = []
        if command.subscribe {
            if let error {
                // Refused (e.g. NOPERM) or the connection went: every caller waiting for it fails and
                // its listener leaves all its names. Listeners restored after a reconnect stay, with
                // the name unsubscribed: it is not retried here (a refusal would repeat at once); the
                // next reconnect or the next listener of the name subscribes it again.
                entry.server = .unsubscribed
                let failed = entry.waiting
                entry.waiting = []
                for id in failed { entry.listeners[id] = nil }
                entries[command.name] = entry.listeners.isEmpty ? nil : entry
                for id in failed {
                    guard let waiting = pending.removeValue(forKey: id) else { continue }
                    resume.append((waiting.waiter, error))
                    let others = waiting.names.filter { $0 != command.name && entries[$0]?.listeners[id] != nil }
                    commands += remove(id: id, from: others)
                }
                return (resume, commands)
            }
            entry.server = .subscribed
            let confirmedFor = entry.waiting
            entry.waiting = []
            entries[command.name] = entry
            for id in confirmedFor {
                pending[id]?.unconfirmed.remove(command.name)
                if pending[id]?.unconfirmed.isEmpty == true, let done = pending.removeValue(forKey: id) {
                    resume.append((done.waiter, nil))
                }
            }
        } else {
            // Confirmed or not, the channel is treated as unsubscribed: a failed UNSUBSCRIBE only
            // means messages may still arrive, and they find no listener.
            entry.server = .unsubscribed
            entries[command.name] = entry
        }
        commands += settle(command.name)
        return (resume, commands)
    }

    /// The server dropped `name` by itself (a `sunsubscribe` nobody asked for: the shard channel's
    /// slot moved to another node, or this node became a replica). Returns its listeners, who may
    /// have missed messages, and, when `resubscribe` is true and it still has listeners, the command
    /// that subscribes it again on this connection. With `resubscribe` false (a cluster node's
    /// subscriber, whose channels must move to the slot's new node) the name keeps its listeners,
    /// unsubscribed, until they are removed.
    package mutating func serverUnsubscribed(_ name: Name, resubscribe: Bool) -> (listeners: [Listener], commands: [Command]) {
        guard var entry = entries[name], entry.server == .subscribed else { return ([], []) }
        entry.server = .unsubscribed
        entries[name] = entry
        let listeners = Array(entry.listeners.values)
        guard resubscribe else { return (listeners, []) }
        return (listeners, settle(name))
    }

    /// The connection was lost: nothing is subscribed on the next one. Callers still waiting for a
    /// confirmation fail with `error` (their listeners are removed); the listeners already
    /// subscribed stay, to be restored by ``resubscribe(waiter:)`` on the next connection.
    package mutating func connectionLost(_ error: RedisError) -> [Waiter] {
        generation &+= 1
        inFlight = 0
        let failed = pending
        pending = [:]
        for (id, waiting) in failed {
            for name in waiting.names { entries[name]?.listeners[id] = nil }
        }
        for (name, var entry) in entries {
            entry.server = .unsubscribed
            entry.waiting = []
            entries[name] = entry.listeners.isEmpty ? nil : entry
        }
        return failed.values.map(\.waiter)
    }

    /// On a new connection: subscribes every name that has listeners; `waiter` (id `id`) is resumed
    /// when all are confirmed, or at once (`.ready`) if there is nothing to restore.
    package mutating func resubscribe(id: UInt64, waiter: Waiter) -> (Admission, [Command]) {
        var commands: [Command] = []
        var unconfirmed: Set<Name> = []
        for (name, var entry) in entries where !entry.listeners.isEmpty {
            switch entry.server {
            case .unsubscribed:
                entry.server = .subscribing
                commands.append(send(name, subscribe: true))
            case .subscribing, .unsubscribing:
                break
            case .subscribed:
                continue
            }
            entry.waiting.insert(id)
            unconfirmed.insert(name)
            entries[name] = entry
        }
        if unconfirmed.isEmpty { return (.ready, commands) }
        pending[id] = Pending(waiter: waiter, names: Array(unconfirmed), unconfirmed: unconfirmed)
        return (.waiting, commands)
    }

    /// Closing: every waiter and listener, once; the machine is empty afterwards.
    package mutating func closeAll() -> (waiters: [Waiter], listeners: [Listener]) {
        let listeners = everyListener
        let waiters = pending.values.map(\.waiter)
        entries = [:]
        pending = [:]
        inFlight = 0
        generation &+= 1
        return (waiters, listeners)
    }

    /// Brings `name` towards what its listeners want, if nothing is in flight for it.
    private mutating func settle(_ name: Name) -> [Command] {
        guard var entry = entries[name] else { return [] }
        let wanted = !entry.listeners.isEmpty
        switch (entry.server, wanted) {
        case (.subscribed, false):
            entry.server = .unsubscribing
            entries[name] = entry
            return [send(name, subscribe: false)]
        case (.unsubscribed, true):
            entry.server = .subscribing
            entries[name] = entry
            return [send(name, subscribe: true)]
        case (.unsubscribed, false):
            entries[name] = nil
            return []
        default:
            return []
        }
    }

    private mutating func send(_ name: Name, subscribe: Bool) -> Command {
        inFlight += 1
        return Command(name: name, subscribe: subscribe, generation: generation)
    }
}
