import Foundation
@testable import RedisClient
import Testing

@Suite("the subscriber's per-channel state machine")
struct SubscriptionStateMachineTests {
    typealias Machine = SubscriptionStateMachine<String, String>
    let news = Machine.Name(.channel, "news")
    let sports = Machine.Name(.channel, "sports")

    private func verbs(_ commands: [Machine.Command]) -> [String] { commands.map { "\($0.verb) \($0.name.name)" } }

    @Test("the first listener subscribes; a second one shares the SUBSCRIBE and is confirmed with it")
    func sharedSubscribe() {
        var machine = Machine()
        let (first, sent) = machine.add(id: 1, listener: "a", to: [news], waiter: "w1")
        #expect(first == .waiting)
        #expect(verbs(sent) == ["SUBSCRIBE news"])
        let (second, none) = machine.add(id: 2, listener: "b", to: [news], waiter: "w2")
        #expect(second == .waiting)
        #expect(none.isEmpty)
        #expect(machine.commandsInFlight == 1)
        let (resumed, next) = machine.confirmed(sent[0], error: nil)
        #expect(Set(resumed.map(\.0)) == ["w1", "w2"])
        #expect(resumed.allSatisfy { $0.1 == nil })
        #expect(next.isEmpty)
        let (third, nothing) = machine.add(id: 3, listener: "c", to: [news], waiter: "w3")
        #expect(third == .ready)  // already subscribed: no command, no wait
        #expect(nothing.isEmpty)
    }

    @Test("a listener that comes back while UNSUBSCRIBE is in flight waits for it, then SUBSCRIBE goes out: never two commands at once")
    func unsubscribeThenSubscribeAreOrdered() {
        var machine = Machine()
        let (_, subscribe) = machine.add(id: 1, listener: "a", to: [news], waiter: "w1")
        _ = machine.confirmed(subscribe[0], error: nil)
        let unsubscribe = machine.remove(id: 1, from: [news])
        #expect(verbs(unsubscribe) == ["UNSUBSCRIBE news"])
        let (admission, held) = machine.add(id: 2, listener: "b", to: [news], waiter: "w2")
        #expect(admission == .waiting)
        #expect(held.isEmpty)  // not sent beside the UNSUBSCRIBE, where it could be overtaken
        #expect(machine.commandsInFlight == 1)
        let (nobody, resubscribe) = machine.confirmed(unsubscribe[0], error: nil)
        #expect(nobody.isEmpty)
        #expect(verbs(resubscribe) == ["SUBSCRIBE news"])
        let (resumed, _) = machine.confirmed(resubscribe[0], error: nil)
        #expect(resumed.map(\.0) == ["w2"])
        #expect(machine.serverState(of: news) == .subscribed)
        #expect(machine.listeners(of: news) == ["b"])
    }

    @Test("the last listener leaving while SUBSCRIBE is in flight unsubscribes once it is confirmed")
    func leaveDuringSubscribe() {
        var machine = Machine()
        let (_, subscribe) = machine.add(id: 1, listener: "a", to: [news], waiter: "w1")
        #expect(machine.remove(id: 1, from: [news]).isEmpty)
        let (resumed, next) = machine.confirmed(subscribe[0], error: nil)
        #expect(resumed.isEmpty)  // the waiter left with its listener
        #expect(verbs(next) == ["UNSUBSCRIBE news"])
        _ = machine.confirmed(next[0], error: nil)
        #expect(machine.serverState(of: news) == .unsubscribed)
        #expect(machine.wantedNames.isEmpty)
        #expect(machine.commandsInFlight == 0)
    }

    @Test("a refused SUBSCRIBE fails its waiters and takes their listeners off every name they asked for")
    func refusalFailsWaiters() {
        var machine = Machine()
        let (_, sent) = machine.add(id: 1, listener: "a", to: [news, sports], waiter: "w1")
        #expect(Set(verbs(sent)) == ["SUBSCRIBE news", "SUBSCRIBE sports"])
        let sportsCommand = sent.first { $0.name == sports }!
        let newsCommand = sent.first { $0.name == news }!
        let (nothing, _) = machine.confirmed(sportsCommand, error: nil)
        #expect(nothing.isEmpty)  // still waiting for news
        let refusal = RedisError(code: .server, message: "NOPERM this user has no permissions to access the 'news' channel")
        let (failed, next) = machine.confirmed(newsCommand, error: refusal)
        #expect(failed.map(\.0) == ["w1"])
        #expect(failed.first?.1?.message == refusal.message)
        #expect(verbs(next) == ["UNSUBSCRIBE sports"])  // the failed caller's other channel is released
        #expect(machine.listenerCount(of: news) == 0)
        #expect(machine.listenerCount(of: sports) == 0)
    }

    @Test("a lost connection fails the callers still waiting, keeps subscribed listeners, and ignores late answers from the old connection")
    func connectionLoss() {
        var machine = Machine()
        let (_, first) = machine.add(id: 1, listener: "a", to: [news], waiter: "w1")
        _ = machine.confirmed(first[0], error: nil)
        let (_, pending) = machine.add(id: 2, listener: "b", to: [sports], waiter: "w2")
        let failed = machine.connectionLost(RedisError(code: .connection, message: "gone"))
        #expect(failed == ["w2"])
        #expect(machine.listeners(of: news) == ["a"])
        #expect(machine.listenerCount(of: sports) == 0)
        #expect(machine.confirmed(pending[0], error: nil).resume.isEmpty)  // old generation: ignored
        #expect(machine.commandsInFlight == 0)
        let (admission, restore) = machine.resubscribe(id: 99, waiter: "reconnect")
        #expect(admission == .waiting)
        #expect(verbs(restore) == ["SUBSCRIBE news"])
        #expect(restore[0].generation == 1)
        let (resumed, _) = machine.confirmed(restore[0], error: nil)
        #expect(resumed.map(\.0) == ["reconnect"])
        #expect(machine.serverState(of: news) == .subscribed)
    }

    @Test("every sequence of 8 adds, removes and answers keeps at most one command per channel in flight and ends where the listeners want")
    func everyInterleaving() {
        let steps = 8
        var sequences = 0
        for code in 0..<Int(pow(3.0, Double(steps))) {
            var machine = Machine()
            var inFlight: [Machine.Command] = []
            var listening: [UInt64] = []
            var nextID: UInt64 = 0
            var rest = code
            for _ in 0..<steps {
                let operation = rest % 3
                rest /= 3
                switch operation {
                case 0:
                    nextID += 1
                    let (_, commands) = machine.add(id: nextID, listener: "l\(nextID)", to: [news], waiter: "w\(nextID)")
                    listening.append(nextID)
                    inFlight += commands
                case 1:
                    guard !listening.isEmpty else { continue }
                    inFlight += machine.remove(id: listening.removeFirst(), from: [news])
                default:
                    guard !inFlight.isEmpty else { continue }
                    inFlight += machine.confirmed(inFlight.removeFirst(), error: nil).commands
                }
                #expect(inFlight.count <= 1, "sequence \(code): two commands for one channel in flight: \(inFlight)")
            }
            while !inFlight.isEmpty { inFlight += machine.confirmed(inFlight.removeFirst(), error: nil).commands }
            #expect(machine.serverState(of: news) == (listening.isEmpty ? .unsubscribed : .subscribed), "sequence \(code)")
            #expect(machine.listenerCount(of: news) == listening.count, "sequence \(code)")
            #expect(machine.commandsInFlight == 0, "sequence \(code)")
            sequences += 1
        }
        #expect(sequences == 6_561)
    }

    @Test("a shard channel the server dropped: its listeners are returned to be told; a one-server subscriber sends SSUBSCRIBE again, a cluster node's does not")
    func serverDroppedShardChannel() {
        let orders = Machine.Name(.shardChannel, "orders")
        for resubscribe in [true, false] {
            var machine = Machine()
            let (_, sent) = machine.add(id: 1, listener: "a", to: [orders], waiter: "w1")
            #expect(verbs(sent) == ["SSUBSCRIBE orders"])
            _ = machine.confirmed(sent[0], error: nil)
            let (listeners, commands) = machine.serverUnsubscribed(orders, resubscribe: resubscribe)
            #expect(listeners == ["a"])
            #expect(verbs(commands) == (resubscribe ? ["SSUBSCRIBE orders"] : []))
            #expect(machine.serverState(of: orders) == (resubscribe ? .subscribing : .unsubscribed))
            // A second drop of a channel that is not subscribed changes nothing.
            let (again, none) = machine.serverUnsubscribed(orders, resubscribe: resubscribe)
            #expect(again.isEmpty && none.isEmpty)
            if !resubscribe {
                // Its listener leaving removes it without a SUNSUBSCRIBE (the server has none).
                #expect(machine.remove(id: 1, from: [orders]).isEmpty)
                #expect(machine.listenerCount(of: orders) == 0)
            }
        }
    }
}
