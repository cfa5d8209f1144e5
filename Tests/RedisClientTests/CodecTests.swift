import CHiredis
import NIOCore
@testable import RedisClient
import Testing

@Suite("RESP codec: our encoder, hiredis's reader")
struct CodecTests {
    @Test("commands are encoded as RESP arrays of bulk strings, byte for byte")
    func encodesCommandBytes() throws {
        let encoded = RESPEncoder.encode(RedisCommand("SET", "key", "value"))
        #expect(String(buffer: encoded) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
    }

    @Test("binary arguments with NUL and CRLF are length-prefixed, not escaped")
    func encodesBinaryArguments() throws {
        let payload: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF, 0x24]
        let encoded = RESPEncoder.encode(RedisCommand("SET", "k", RedisArgument(bytes: payload)))
        let expected: [UInt8] = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n".utf8) + payload + Array("\r\n".utf8)
        #expect(Array(encoded.readableBytesView) == expected)
    }

    @Test("an empty argument is encoded as a zero-length bulk string")
    func encodesEmptyArgument() throws {
        let encoded = RESPEncoder.encode(RedisCommand("SET", "k", ""))
        #expect(String(buffer: encoded) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
    }

    @Test("integer and double arguments are sent in decimal")
    func encodesNumbers() throws {
        let encoded = RESPEncoder.encode(RedisCommand("EXPIRE", "k", RedisArgument(-42), RedisArgument(1.5)))
        #expect(String(buffer: encoded) == "*4\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$3\r\n-42\r\n$3\r\n1.5\r\n")
    }

    @Test("the encoder writes exactly hiredis's bytes for 2,000 random commands, alone and pipelined")
    func encoderMatchesHiredisFormatter() throws {
        var generator = SystemRandomNumberGenerator()
        var commands: [RedisCommand] = []
        // Lengths around the digit boundaries (9/10, 99/100, 999/1000 ...) and binary bytes.
        let lengths = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 1_001, 9_999, 10_000, 65_536]
        var mismatches: [Int] = []
        for index in 0..<2_000 {
            let argumentCount = Int.random(in: 0...12, using: &generator)
            var command = RedisCommand(["GET", "MGET", "SET", "EVALSHA", "x"].randomElement(using: &generator)!)
            for _ in 0..<argumentCount {
                let length = Int.random(in: 0..<8, using: &generator) == 0 ? lengths.randomElement(using: &generator)! : Int.random(in: 0...40, using: &generator)
                var bytes = [UInt8](repeating: 0, count: length)
                for position in bytes.indices { bytes[position] = UInt8.random(in: 0...255, using: &generator) }
                command.append(RedisArgument(bytes: bytes))
            }
            commands.append(command)
            let ours = Array(RESPEncoder.encode(command).readableBytesView)
            if ours != Self.hiredisFormat(command) || ours.count != RESPEncoder.encodedSize(command) { mismatches.append(index) }
        }
        #expect(mismatches.isEmpty, "commands encoded unlike hiredis: \(mismatches.prefix(10))")
        // 111 arguments: a count of three digits.
        let wide = RedisCommand("MGET", (0..<111).map { RedisArgument("key-\($0)") })
        #expect(Array(RESPEncoder.encode(wide).readableBytesView) == Self.hiredisFormat(wide))
        let pipelined = Array(RESPEncoder.encode(pipeline: commands).readableBytesView)
        #expect(pipelined == commands.flatMap { Self.hiredisFormat($0) }, "the pipeline differs from hiredis's commands back to back")
        // `GET key` written from the key's string in place (the lone cache read): the same bytes,
        // and exactly the size it reserves, for keys of 0 to 3 length digits and non-ASCII text.
        for key in ["", "k", "stampede:{ns:0:hit}:v", String(repeating: "é", count: 60), String(repeating: "x", count: 1_000)] {
            var buffer = ByteBuffer()
            RESPEncoder.write("GET", key, into: &buffer)
            let command = RedisCommand("GET", RedisArgument(key))
            #expect(Array(buffer.readableBytesView) == Self.hiredisFormat(command), "GET \(key.prefix(20))")
            #expect(buffer.readableBytes == RESPEncoder.encodedSize("GET", argumentBytes: key.utf8.count))
        }
    }

    @Test("commands built from strings in place encode like the same RedisCommand")
    func encodesStringArgumentsInPlace() {
        let keys = ["a", "", "stampede:{ns}:v:ключ", String(repeating: "k", count: 1_234)]
        var buffer = ByteBuffer(string: "prefix")
        RESPEncoder.write("MGET", keys, into: &buffer)
        let expected = Array("prefix".utf8) + Self.hiredisFormat(RedisCommand("MGET", keys.map { RedisArgument($0) }))
        #expect(Array(buffer.readableBytesView) == expected)
    }

    /// What hiredis's `redisFormatCommandArgv` writes for `command` (the reference).
    static func hiredisFormat(_ command: RedisCommand) -> [UInt8] {
        let arguments = [Array(command.storage[0..<command.lengths[0]])] + command.arguments
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { bytes in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, bytes.count))
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(pointer).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(pointer), byteCount: bytes.count) }
            return pointer
        }
        defer { for pointer in pointers { pointer?.deallocate() } }
        let lengths = arguments.map(\.count)
        var target: UnsafeMutablePointer<CChar>?
        let length = pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { lengths in
                argv.withMemoryRebound(to: UnsafePointer<CChar>?.self) { argv in
                    redisFormatCommandArgv(&target, Int32(arguments.count), argv.baseAddress, lengths.baseAddress)
                }
            }
        }
        guard length >= 0, let target else { return [] }
        defer { redisFreeCommand(target) }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }

    private func parseAll(_ bytes: [UInt8], splitAt splits: [Int]) throws -> [RESPValue] {
        let reader = HiredisReader()
        var values: [RESPValue] = []
        var start = 0
        for end in splits + [bytes.count] {
            try reader.feed(ByteBuffer(bytes: bytes[start..<end]))
            while let value = try reader.next() { values.append(value) }
            start = end
        }
        return values
    }

    static let mixedStream: [UInt8] = Array(
        "+OK\r\n-ERR wrong\r\n:-17\r\n$-1\r\n*-1\r\n$5\r\nhe\r\no\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-NOSCRIPT nested\r\n*0\r\n$0\r\n\r\n".utf8
    )
    static let mixedExpected: [RESPValue] = [
        .simpleString("OK"),
        .error("ERR wrong"),
        .integer(-17),
        .null,
        .null,
        .bulkString(ByteBuffer(string: "he\r\no")),
        .array([.integer(1), .array([.bulkString(ByteBuffer(string: "a")), .null]), .error("NOSCRIPT nested")]),
        .array([]),
        .bulkString(ByteBuffer()),
    ]

    @Test("every reply kind parses, including nested arrays, nils and nested errors")
    func parsesEveryKind() throws {
        #expect(try parseAll(Self.mixedStream, splitAt: []) == Self.mixedExpected)
    }

    @Test("a stream split at every byte boundary yields the same replies")
    func parsesAtEverySplit() throws {
        for split in 1..<Self.mixedStream.count {
            #expect(try parseAll(Self.mixedStream, splitAt: [split]) == Self.mixedExpected, "split at \(split)")
        }
    }

    @Test("a stream fed one byte at a time yields the same replies")
    func parsesByteByByte() throws {
        #expect(try parseAll(Self.mixedStream, splitAt: Array(1..<Self.mixedStream.count)) == Self.mixedExpected)
    }

    @Test("binary payloads with NUL and CRLF survive parsing unchanged")
    func parsesBinaryPayload() throws {
        let payload: [UInt8] = (0...255).map { UInt8($0) } + [0, 13, 10, 0]
        let bytes = Array("$\(payload.count)\r\n".utf8) + payload + Array("\r\n".utf8)
        let values = try parseAll(bytes, splitAt: [3, 100])
        #expect(values.count == 1)
        #expect(values.first?.bytes == payload)
    }

    @Test("a 10 MiB bulk string fed in 64 KiB chunks arrives whole")
    func parsesTenMebibyteBulk() throws {
        let size = 10 * 1024 * 1024
        var payload = [UInt8](repeating: 0, count: size)
        for index in stride(from: 0, to: size, by: 4093) { payload[index] = UInt8(truncatingIfNeeded: index) }
        let bytes = Array("$\(size)\r\n".utf8) + payload + Array("\r\n".utf8)
        let values = try parseAll(bytes, splitAt: Array(stride(from: 65536, to: bytes.count, by: 65536)))
        #expect(values.count == 1)
        #expect(values.first?.buffer?.readableBytes == size)
        #expect(values.first?.bytes == payload)
    }

    @Test("malformed input is a protocol error, not a crash")
    func rejectsMalformedInput() throws {
        // The frame guard refuses a type byte RESP2 does not have before hiredis sees it.
        let reader = HiredisReader()
        do {
            try reader.feed(ByteBuffer(string: "!bogus\r\n"))
            _ = try reader.next()
            Issue.record("malformed input was accepted")
        } catch {
            #expect(error.code == .protocolError)
            #expect(error.message.contains("unknown type byte 33"))
        }
    }

    @Test("a script's name for EVALSHA is the SHA-1 of its exact bytes (FIPS test vectors)")
    func sha1Vectors() {
        #expect(RedisScript(name: "a", source: "").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript(name: "a", source: "abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(RedisScript(name: "a", source: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").sha1 == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(RedisScript(name: "a", source: String(repeating: "a", count: 1_000_000)).sha1 == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }
}
