import Foundation
import NIOCore
import NIOPosix
@testable import RedisClient
import RedisServerProcess
import RedisTestSupport
import Synchronization
import Testing

/// A TCP server on 127.0.0.1 that answers every read with fixed bytes (a broken or hostile "Redis").
private final class CannedServer: Sendable {
    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: [UInt8]
        init(reply: [UInt8]) { self.reply = reply }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: reply)), promise: nil)
        }
    }

    let channel: any Channel
    let port: Int

    init(reply: [UInt8]) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler(reply: reply)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    func stop() async { try? await channel.close() }
}

@Suite("a hostile or broken server cannot take the client past its limits")
struct HostileServerTests {
    private func scan(_ text: String, limits: RESPReplyLimits = RESPReplyLimits()) throws(RedisError) {
        var frameGuard = RESPFrameGuard(limits: limits)
        let bytes = Array(text.utf8)
        let error: RedisError? = bytes.withUnsafeBytes { raw in
            do throws(RedisError) { try frameGuard.scan(raw); return nil } catch { return error }
        }
        if let error { throw error }
    }

    @Test("the frame guard refuses huge declared arrays and bulks, deep nesting and oversized replies at the header")
    func frameGuardLimits() throws {
        #expect(throws: RedisError.self) { try scan("*2147483647\r\n") }
        #expect(throws: RedisError.self) { try scan("$4294967296\r\n") }
        #expect(throws: RedisError.self) { try scan("$-2\r\n") }
        #expect(throws: RedisError.self) { try scan("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n") }
        #expect(throws: RedisError.self) { try scan("$99999999999999999999\r\n") }
        #expect(throws: RedisError.self) { try scan("!oops\r\n") }
        let small = RESPReplyLimits(maxReplyBytes: 1_024, maxArrayElements: 16, maxDepth: 7)
        #expect(throws: RedisError.self) { try scan("$2000\r\n", limits: small) }
        #expect(throws: RedisError.self) { try scan("*17\r\n", limits: small) }
        #expect(throws: RedisError.self) { try scan("+" + String(repeating: "x", count: 1_100) + "\r\n", limits: small) }
        // Limits are per reply: many small replies back to back are fine, and so is a full 7-deep nest.
        try scan(String(repeating: "$900\r\n" + String(repeating: "y", count: 900) + "\r\n", count: 10), limits: small)
        try scan("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*2\r\n:1\r\n$-1\r\n*-1\r\n*0\r\n")
    }

    @Test("a server declaring 2^31 - 1 array elements fails the command at once with a protocol error, not 16 GiB and 47 s")
    func hugeArrayDeclaration() async throws {
        let server = try await CannedServer(reply: Array("*2147483647\r\n".utf8))
        let client = try makeClient(server.url, commandTimeout: .seconds(30))
        do {
            _ = try await client.send("GET", "k")
            Issue.record("the reply was accepted")
        } catch {
            #expect(error.code == .protocolError)
            #expect(error.message.contains("2147483647 elements"), "\(error.message)")
        }
        await client.close()
        await server.stop()
    }

    @Test("a server declaring a bulk string over maxReplyBytes is refused before its bytes are buffered")
    func hugeBulkDeclaration() async throws {
        let server = try await CannedServer(reply: Array("$536870913\r\nxxxx".utf8))
        var configuration = try RedisConfiguration(url: server.url)
        configuration.replyLimits.maxReplyBytes = 1 << 20
        let client = try RedisClient(configuration: configuration, logger: TestRedis.logger)
        do {
            _ = try await client.send("GET", "k")
            Issue.record("the reply was accepted")
        } catch {
            #expect(error.code == .protocolError)
            #expect(error.message.contains("536870913 bytes") && error.message.contains("maxReplyBytes"), "\(error.message)")
        }
        await client.close()
        await server.stop()
    }

    @Test("a reply that never completes fails its command with a timeout")
    func trickledReplyTimesOut() async throws {
        let server = try await CannedServer(reply: Array("$100000\r\nonly a few bytes".utf8))
        let client = try makeClient(server.url, commandTimeout: .milliseconds(300))
        await #expect(throws: RedisError.self) { _ = try await client.send("GET", "k") }
        do { _ = try await client.send("GET", "k") } catch { #expect(error.code == .timeout || error.code == .connection, "\(error)") }
        await client.close()
        await server.stop()
    }

    @Test("ping() checks that the answer is PONG")
    func pingChecksPong() async throws {
        let server = try await CannedServer(reply: Array("+OK\r\n".utf8))
        let client = try makeClient(server.url)
        do {
            _ = try await client.ping()
            Issue.record("+OK was taken for PONG")
        } catch {
            #expect(error.code == .protocolError && error.message.contains("not PONG"))
        }
        await client.close()
        await server.stop()
    }
}
