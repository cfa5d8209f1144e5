public import NIOCore

/// One argument of a Redis command: raw bytes, binary-safe.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    /// The bytes sent for this argument.
    public var bytes: [UInt8]

    /// An argument from raw bytes (may contain `\0` and `\r\n`).
    public init(bytes: [UInt8]) { self.bytes = bytes }
    /// An argument from the readable bytes of a buffer.
    public init(buffer: ByteBuffer) { self.bytes = Array(buffer.readableBytesView) }
    /// An argument from UTF-8 text.
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    /// An argument from an integer, sent in decimal.
    public init(_ value: some BinaryInteger) { self.bytes = Array(String(value).utf8) }
    /// An argument from a floating-point number, sent in Redis's accepted decimal form.
    public init(_ value: Double) { self.bytes = Array(String(value).utf8) }
    /// An argument from a string literal.
    public init(stringLiteral value: String) { self.init(value) }
    /// An argument from an integer literal.
    public init(integerLiteral value: Int) { self.init(value) }
}

/// A Redis command: its name followed by its arguments, all binary-safe.
///
/// ```swift
/// let command = RedisCommand("SET", "greeting", RedisArgument(bytes: [0x68, 0x00, 0x69]), "PX", 500)
/// ```
/// Commands are encoded (``RESPEncoder``) on the caller's thread.
public struct RedisCommand: Sendable, Hashable {
    // All arguments stored back to back, with their lengths: one allocation, cheap to append.
    @usableFromInline var storage: [UInt8]
    @usableFromInline var lengths: [Int]

    /// A command from its name and arguments.
    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }

    /// A command from its name and an array of arguments.
    public init(_ name: String, _ arguments: [RedisArgument]) {
        self.storage = Array(name.utf8)
        self.lengths = [storage.count]
        self.storage.reserveCapacity(storage.count + arguments.reduce(0) { $0 + $1.bytes.count })
        for argument in arguments { append(argument) }
    }

    /// Appends one argument.
    public mutating func append(_ argument: RedisArgument) {
        storage.append(contentsOf: argument.bytes)
        lengths.append(argument.bytes.count)
    }

    /// Appends one argument given as UTF-8 text.
    public mutating func append(_ text: String) {
        let before = storage.count
        storage.append(contentsOf: text.utf8)
        lengths.append(storage.count - before)
    }

    /// Appends one argument from the readable bytes of a buffer.
    public mutating func append(_ buffer: ByteBuffer) {
        storage.append(contentsOf: buffer.readableBytesView)
        lengths.append(buffer.readableBytes)
    }

    /// The command name, upper-cased (for logs and metrics).
    public var name: String {
        String(decoding: storage[0..<lengths[0]], as: UTF8.self).uppercased()
    }

    /// The arguments after the name, as byte arrays.
    public var arguments: [[UInt8]] {
        var result: [[UInt8]] = []
        var offset = lengths[0]
        for length in lengths.dropFirst() {
            result.append(Array(storage[offset..<offset + length]))
            offset += length
        }
        return result
    }

    /// Total payload size of all arguments in bytes.
    public var payloadSize: Int { storage.count }
}
