import CHiredis
package import NIOCore

/// hiredis's incremental reply parser: feed bytes, pull complete replies.
///
/// Each reply is deep-copied into a ``RESPValue`` and the hiredis reply tree is freed once, from
/// its root. Every byte passes a ``RESPFrameGuard`` first, so a reply that declares more than the
/// limits allow is refused before hiredis allocates for it. Not thread-safe: one instance belongs
/// to one connection's event loop.
package final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private var frameGuard: RESPFrameGuard

    /// A new reader. Traps only if hiredis cannot allocate its small state struct.
    package init(limits: RESPReplyLimits = RESPReplyLimits()) {
        guard let reader = redisReaderCreate() else { fatalError("hiredis: redisReaderCreate returned NULL (out of memory)") }
        self.reader = reader
        self.frameGuard = RESPFrameGuard(limits: limits)
    }

    deinit { redisReaderFree(reader) }

    /// Hands bytes received from the socket to the parser.
    /// - Throws: ``RedisError/Code/protocolError`` for bytes that are not RESP2 or break a limit.
    package func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = try buffer.withUnsafeReadableBytes { (bytes) throws(RedisError) -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            try frameGuard.scan(bytes)
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw readerError() }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    package func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer? = nil
        if redisReaderGetReply(reader, &raw) != REDIS_OK { throw readerError() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.copy(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func readerError() -> RedisError {
        let message = withUnsafeBytes(of: &reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisError(code: .protocolError, message: "hiredis reader: \(message.isEmpty ? "unknown error" : message)")
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(ByteBuffer(bytes: UnsafeRawBufferPointer(start: node.str, count: node.len)))
        case REDIS_REPLY_STATUS:
            return .simpleString(text(node))
        case REDIS_REPLY_ERROR:
            return .error(text(node))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = node.element[index] { elements.append(copy(child)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func text(_ node: redisReply) -> String {
        guard let str = node.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: node.len), as: UTF8.self)
    }
}
