import Logging
import NIOCore
import NIOEmbedded
@testable import RedisClient
import Testing

/// The connection on an in-memory channel: exact bytes out, scripted replies in, a clock the test
/// advances. Nothing here depends on timing.
@Suite("the connection, byte for byte on a testing channel")
struct ChannelTests {
    private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func configuration(_ url: String = "redis://127.0.0.1:6379", name: String? = nil) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.clientName = name
        return configuration
    }

    private func activeChannel() async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6379))
        return channel
    }

    private func written(_ channel: NIOAsyncTestingChannel) async throws -> String {
        String(buffer: try await channel.waitForOutboundWrite(as: ByteBuffer.self))
    }

    private static let infoReply: String = {
        let body = "# Cluster\r\ncluster_enabled:0\r\n"
        return "$\(body.utf8.count)\r\n\(body)\r\n"
    }()

    /// Connects over `channel`, answering the handshake (INFO only) with `+OK` style replies.
    private func connected(_ channel: NIOAsyncTestingChannel, _ configuration: RedisConfiguration, exclusive: Bool = false) async throws -> RedisConnection {
        async let connection = RedisConnection.connect(channel: channel, configuration: configuration, logger: logger, exclusive: exclusive)
        _ = try await written(channel)
        try await channel.writeInbound(ByteBuffer(string: Self.infoReply))
        return try await connection
    }

    @Test("the handshake is one write, AUTH then SELECT then CLIENT SETNAME then INFO, and nothing else goes out until it is answered")
    func handshakeOrder() async throws {
        let channel = try await activeChannel()
        let configuration = try configuration("redis://u:pw@127.0.0.1:6379/2", name: "w")
        async let connecting = RedisConnection.connect(channel: channel, configuration: configuration, logger: logger)
        let bytes = try await written(channel)
        #expect(bytes == "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$2\r\npw\r\n" + "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
            + "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$1\r\nw\r\n" + "*2\r\n$4\r\nINFO\r\n$7\r\ncluster\r\n")
        try await channel.writeInbound(ByteBuffer(string: "+OK\r\n+OK\r\n+OK\r\n" + Self.infoReply))
        let connection = try await connecting
        async let pong = connection.send(RedisCommand("PING"))
        #expect(try await written(channel) == "*1\r\n$4\r\nPING\r\n")
        try await channel.writeInbound(ByteBuffer(string: "+PONG\r\n"))
        #expect(try await pong == .simpleString("PONG"))
        await connection.close()
    }

    @Test("a refused AUTH fails the connect with .authentication and the server's words; SELECT's reply is not taken for anything")
    func refusedAuth() async throws {
        let channel = try await activeChannel()
        async let connecting = RedisConnection.connect(channel: channel, configuration: try configuration("redis://:bad@127.0.0.1:6379/3"), logger: logger)
        _ = try await written(channel)
        try await channel.writeInbound(ByteBuffer(string: "-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n"))
        do {
            _ = try await connecting
            Issue.record("connected with a refused password")
        } catch let error as RedisError {
            #expect(error.code == .authentication)
            #expect(error.message == "WRONGPASS invalid username-password pair or user is disabled.")
        }
        #expect(try await channel.closeFuture.map { true }.get())
    }

    @Test("a state machine in the handshake refuses ordinary commands, and a handshake is refused once active")
    func handshakeGate() {
        var machine = ConnectionStateMachine<String>(handshake: true)
        guard case .fail("a", let early) = machine.send(id: 1, deadline: .now() + .seconds(1), continuation: "a") else { Issue.record("a command went out before the handshake"); return }
        #expect(early.code == .connection)
        guard case .write = machine.send(id: 2, deadline: .now() + .seconds(1), continuation: "h", replies: 2, purpose: .handshake) else { Issue.record("the handshake was refused"); return }
        _ = machine.received(.simpleString("OK"))
        _ = machine.received(.simpleString("OK"))
        machine.handshakeSucceeded()
        guard case .fail("again", _) = machine.send(id: 3, deadline: .now() + .seconds(1), continuation: "again", purpose: .handshake) else { Issue.record("a second handshake went out"); return }
        guard case .write = machine.send(id: 4, deadline: .now() + .seconds(1), continuation: "b") else { Issue.record("a command was refused once active"); return }
    }

    @Test("concurrent commands pipeline and their replies are matched in order")
    func pipelining() async throws {
        let channel = try await activeChannel()
        let connection = try await connected(channel, try configuration())
        async let first = connection.send(RedisCommand("GET", "a"))
        #expect(try await written(channel) == "*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
        async let second = connection.send(RedisCommand("GET", "b"))
        #expect(try await written(channel) == "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n")
        try await channel.writeInbound(ByteBuffer(string: "$1\r\n1\r\n$1\r\n2\r\n"))
        #expect(try await first.string == "1")
        #expect(try await second.string == "2")
        await connection.close()
    }

    @Test("a timed-out command fails with .timeout; the connection closes and the other command in flight fails with .connection")
    func timeout() async throws {
        let channel = try await activeChannel()
        var configuration = try configuration()
        configuration.commandTimeout = .seconds(5)
        let connection = try await connected(channel, configuration)
        let slow = Task { try await connection.send(RedisCommand("GET", "a"), timeout: .seconds(1)) }
        _ = try await written(channel)
        let other = Task { try await connection.send(RedisCommand("GET", "b")) }
        _ = try await written(channel)
        await channel.testingEventLoop.advanceTime(to: .now() + .seconds(2))
        await #expect(throws: RedisError(code: .timeout, message: "no reply within the command timeout; the connection is discarded because later replies can no longer be matched")) { try await slow.value }
        do {
            _ = try await other.value
            Issue.record("the other command succeeded on a discarded connection")
        } catch let error as RedisError {
            #expect(error.code == .connection)
        }
        #expect(!connection.isActive)
    }

    @Test("a graceful close refuses new commands, lets the 2 in flight get their replies, then closes")
    func gracefulClose() async throws {
        let channel = try await activeChannel()
        let connection = try await connected(channel, try configuration())
        async let first = connection.send(RedisCommand("GET", "a"))
        _ = try await written(channel)
        async let second = connection.send(RedisCommand("GET", "b"))
        _ = try await written(channel)
        await connection.requestGracefulClose()
        do {
            _ = try await connection.send(RedisCommand("GET", "c"))
            Issue.record("a new command was accepted while closing")
        } catch {
            #expect(error.code == .shutdown)
        }
        #expect(connection.isActive)
        try await channel.writeInbound(ByteBuffer(string: "$1\r\n1\r\n$1\r\n2\r\n"))
        #expect(try await first.string == "1")
        #expect(try await second.string == "2")
        await connection.closeGracefully()  // already closed: returns at once
        #expect(!connection.isActive)
    }

    @Test("on a leased connection, a cancelled command closes the connection, so a blocked BLPOP cannot pop for nobody")
    func cancelledLeaseCloses() async throws {
        let channel = try await activeChannel()
        let connection = try await connected(channel, try configuration(), exclusive: true)
        let blocked = Task { try await connection.send(RedisCommand("BLPOP", "q", "0"), timeout: .seconds(3600)) }
        #expect(try await written(channel) == "*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        blocked.cancel()
        do {
            _ = try await blocked.value
            Issue.record("the cancelled BLPOP returned")
        } catch let error as RedisError {
            #expect(error.code == .cancelled)
        }
        #expect(try await channel.closeFuture.map { true }.get())
    }

    @Test("on a shared connection, a cancelled command is answered at once and its late reply is dropped; the connection stays")
    func cancelledSharedStays() async throws {
        let channel = try await activeChannel()
        let connection = try await connected(channel, try configuration())
        let waiting = Task { try await connection.send(RedisCommand("GET", "a")) }
        _ = try await written(channel)
        waiting.cancel()
        await #expect(throws: RedisError.self) { try await waiting.value }
        async let next = connection.send(RedisCommand("GET", "b"))
        _ = try await written(channel)
        try await channel.writeInbound(ByteBuffer(string: "$4\r\nlate\r\n$1\r\n2\r\n"))
        #expect(try await next.string == "2")
        #expect(connection.isActive)
        await connection.close()
    }

    @Test("the client's tasks run on its event loop when they prefer its executor")
    func executorRunsOnTheLoop() async throws {
        let client = try RedisClient(url: "redis://127.0.0.1:1")
        let onLoop = await withTaskExecutorPreference(client.taskExecutor) { client.eventLoop.inEventLoop }
        #expect(onLoop)
        await client.close()
    }
}
