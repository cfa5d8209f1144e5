public import NIOCore

/// A reply from Redis, deep-copied out of hiredis's reader into a `Sendable` Swift value.
///
/// RESP2 has five reply kinds; `RESPValue` mirrors them exactly. Bulk strings keep their bytes
/// verbatim (they may contain `\0` or `\r\n`). A top-level error reply is thrown as a ``RedisError``
/// with code ``RedisError/Code/server`` by the client; errors nested inside arrays (for example
/// in a Lua script's table reply) stay in the value as ``error(_:)``.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `OK` or `PONG` (`+...`).
    case simpleString(String)
    /// An error reply nested inside an array (`-...`), with Redis's message verbatim.
    case error(String)
    /// An integer reply (`:...`).
    case integer(Int64)
    /// A bulk string reply (`$...`), binary-safe.
    case bulkString(ByteBuffer)
    /// The nil bulk string or nil array (`$-1` / `*-1`).
    case null
    /// An array reply (`*...`); elements may be any kind, including nested arrays.
    case array([RESPValue])
}

extension RESPValue {
    /// The reply as UTF-8 text when it is a bulk or simple string, else `nil`.
    public var string: String? {
        switch self {
        case .bulkString(let buffer): return String(buffer: buffer)
        case .simpleString(let text): return text
        default: return nil
        }
    }

    /// The reply's bytes when it is a bulk or simple string, else `nil`.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let buffer): return Array(buffer.readableBytesView)
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// The reply as a buffer when it is a bulk string, else `nil`.
    public var buffer: ByteBuffer? {
        if case .bulkString(let buffer) = self { return buffer }
        return nil
    }

    /// The reply as an integer: an integer reply, or a string reply holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulkString(let buffer): return Self.parseInt(buffer.readableBytesView)
        case .simpleString(let text): return Int64(text)
        default: return nil
        }
    }

    /// Parses an optionally signed decimal without building a String (replies like TIME's are hot).
    private static func parseInt(_ bytes: ByteBufferView) -> Int64? {
        var iterator = bytes.makeIterator()
        guard var byte = iterator.next() else { return nil }
        let negative = byte == UInt8(ascii: "-")
        if negative { guard let next = iterator.next() else { return nil }; byte = next }
        var value: Int64 = 0
        while true {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            guard let next = iterator.next() else { break }
            byte = next
        }
        return negative ? -value : value
    }

    /// The elements when the reply is an array, else `nil`.
    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// Whether the reply is the nil bulk string or nil array.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RESPValue: CustomStringConvertible {
    /// A short, human-readable rendering (binary bulk strings are shown by length).
    public var description: String {
        switch self {
        case .simpleString(let text): return "+\(text)"
        case .error(let message): return "-\(message)"
        case .integer(let value): return ":\(value)"
        case .null: return "(nil)"
        case .bulkString(let buffer):
            if let text = String(validatingUTF8Bytes: buffer.readableBytesView), buffer.readableBytes <= 200 {
                return "\"\(text)\""
            }
            return "<\(buffer.readableBytes) bytes>"
        case .array(let values): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

extension String {
    init?(validatingUTF8Bytes bytes: some Collection<UInt8>) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = String(scalars)
    }
}
