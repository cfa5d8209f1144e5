import NIOCore
@testable import RedisClient
import Testing

@Suite("connection state machine")
struct StateMachineTests {
    typealias Machine = ConnectionStateMachine<String>

    @Test("replies complete commands in FIFO order")
    func fifo() {
        var machine = Machine()
        let deadline = NIODeadline.now() + .seconds(5)
        for name in ["a", "b", "c"] {
            guard case .write = machine.send(id: 1, deadline: deadline, continuation: name) else { Issue.record("expected write"); return }
        }
        for (expected, reply) in zip(["a", "b", "c"], [RESPValue.integer(1), .integer(2), .integer(3)]) {
            guard case .succeed(let who, let value) = machine.received(reply) else { Issue.record("expected succeed"); return }
            #expect(who == expected)
            #expect(value == reply)
        }
        #expect(machine.inFlight == 0)
    }

    @Test("an error reply fails only its own command")
    func errorReply() {
        var machine = Machine()
        _ = machine.send(id: 1, deadline: .now() + .seconds(1), continuation: "a")
        _ = machine.send(id: 2, deadline: .now() + .seconds(1), continuation: "b")
        guard case .failServer("a", "WRONGTYPE x") = machine.received(.error("WRONGTYPE x")) else { Issue.record("expected failServer"); return }
        guard case .succeed("b", _) = machine.received(.integer(1)) else { Issue.record("expected succeed"); return }
    }

    @Test("a reply nobody asked for is a protocol violation")
    func unsolicited() {
        var machine = Machine()
        guard case .protocolViolation(let error) = machine.received(.simpleString("OK")) else { Issue.record("expected violation"); return }
        #expect(error.code == .protocolError)
    }

    @Test("a cancelled command is answered at once and its late reply is dropped")
    func cancellation() {
        var machine = Machine()
        _ = machine.send(id: 7, deadline: .now() + .seconds(1), continuation: "a")
        _ = machine.send(id: 8, deadline: .now() + .seconds(1), continuation: "b")
        guard case .failCancelled("a") = machine.cancel(id: 7) else { Issue.record("expected cancel"); return }
        guard case .none = machine.cancel(id: 7) else { Issue.record("second cancel must do nothing"); return }
        guard case .discard = machine.received(.integer(1)) else { Issue.record("expected discard"); return }
        guard case .succeed("b", .integer(2)) = machine.received(.integer(2)) else { Issue.record("expected b"); return }
    }

    @Test("an expired deadline times the command out; otherwise the timer re-arms for the earliest")
    func timeouts() {
        var machine = Machine()
        let now = NIODeadline.now()
        _ = machine.send(id: 1, deadline: now + .seconds(10), continuation: "late")
        _ = machine.send(id: 2, deadline: now + .seconds(2), continuation: "early")
        guard case .rearm(let next) = machine.timerFired(now: now + .seconds(1), timeoutDescription: { _ in "" }) else { Issue.record("expected rearm"); return }
        #expect(next == now + .seconds(2))
        guard case .timedOut("early", let error) = machine.timerFired(now: now + .seconds(3), timeoutDescription: { _ in "t" }) else { Issue.record("expected timeout"); return }
        #expect(error.code == .timeout)
    }

    @Test("closing fails every waiting command, and later sends fail immediately")
    func closing() {
        var machine = Machine()
        _ = machine.send(id: 1, deadline: .now() + .seconds(1), continuation: "a")
        _ = machine.send(id: 2, deadline: .now() + .seconds(1), continuation: "b")
        let failed = machine.close(RedisError(code: .connection, message: "gone"))
        #expect(failed == ["a", "b"])
        guard case .fail("c", let error) = machine.send(id: 3, deadline: .now(), continuation: "c") else { Issue.record("expected fail"); return }
        #expect(error.message == "gone")
    }

    @Test("in pub/sub mode, message and pmessage arrays are pushes, confirmations complete commands")
    func pubSubRouting() {
        var machine = Machine()
        machine.pubSubMode = true
        _ = machine.send(id: 1, deadline: .now() + .seconds(1), continuation: "sub")
        let push = RESPValue.array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "ch")), .bulkString(ByteBuffer(string: "x"))])
        guard case .push = machine.received(push) else { Issue.record("expected push"); return }
        let confirm = RESPValue.array([.bulkString(ByteBuffer(string: "subscribe")), .bulkString(ByteBuffer(string: "ch")), .integer(1)])
        guard case .succeed("sub", _) = machine.received(confirm) else { Issue.record("expected confirmation"); return }
    }

    @Test("a sunsubscribe answers the SUNSUBSCRIBE of its channel at the head of the queue; any other (the server dropping a moved slot's channel) is a push")
    func unaskedShardUnsubscribeIsAPush() {
        func sunsubscribe(_ channel: String) -> RESPValue {
            .array([.bulkString(ByteBuffer(string: "sunsubscribe")), .bulkString(ByteBuffer(string: channel)), .integer(0)])
        }
        var machine = Machine()
        machine.pubSubMode = true
        let smessage = RESPValue.array([.bulkString(ByteBuffer(string: "smessage")), .bulkString(ByteBuffer(string: "a")), .bulkString(ByteBuffer(string: "x"))])
        guard case .push = machine.received(smessage) else { Issue.record("smessage must be a push"); return }
        guard case .push = machine.received(sunsubscribe("a")) else { Issue.record("nothing was asked: push"); return }
        _ = machine.send(id: 1, deadline: .now() + .seconds(1), continuation: "leave b", confirmsShardUnsubscribe: "b")
        guard case .push = machine.received(sunsubscribe("a")) else { Issue.record("another channel's sunsubscribe: push"); return }
        #expect(machine.inFlight == 1)
        guard case .succeed("leave b", _) = machine.received(sunsubscribe("b")) else { Issue.record("expected the confirmation"); return }
        #expect(machine.inFlight == 0)
    }
}

@Suite("pipelines")
struct PipelineStateMachineTests {
    @Test("a pipeline entry gathers its N replies, errors included, and completes once")
    func gathersReplies() {
        var machine = ConnectionStateMachine<String>()
        _ = machine.send(id: 1, deadline: .now() + .seconds(1), continuation: "pipe", replies: 3)
        _ = machine.send(id: 2, deadline: .now() + .seconds(1), continuation: "single")
        guard case .discard = machine.received(.integer(1)) else { Issue.record("first reply must be held"); return }
        guard case .discard = machine.received(.error("ERR x")) else { Issue.record("second reply must be held"); return }
        guard case .succeed("pipe", let value) = machine.received(.null) else { Issue.record("expected the pipeline to complete"); return }
        #expect(value == .array([.integer(1), .error("ERR x"), .null]))
        guard case .succeed("single", .integer(9)) = machine.received(.integer(9)) else { Issue.record("expected single"); return }
    }
}
