/// How large a reply may be before it is refused (``RedisConfiguration/replyLimits``).
public struct RESPReplyLimits: Sendable, Hashable {
    /// The most bytes one reply may take on the wire, headers included (default 512 MiB + 64 KiB:
    /// Redis's own `proto-max-bulk-len` plus room for the framing).
    public var maxReplyBytes: Int
    /// The most elements one array may declare (default 16,777,216). hiredis allocates a pointer per
    /// declared element before any arrives, so `*2147483647` would reserve 16 GiB.
    public var maxArrayElements: Int
    /// The deepest nesting of arrays (default 7, hiredis's own limit).
    public var maxDepth: Int

    /// Creates limits; the defaults fit every reply Redis itself can produce for the cache.
    public init(maxReplyBytes: Int = (512 << 20) + (64 << 10), maxArrayElements: Int = 1 << 24, maxDepth: Int = 7) {
        self.maxReplyBytes = maxReplyBytes
        self.maxArrayElements = maxArrayElements
        self.maxDepth = maxDepth
    }
}

/// Follows the RESP2 framing of the bytes a connection receives, before hiredis sees them, and
/// refuses a reply as soon as its headers declare more than ``RESPReplyLimits`` allow (an array of
/// 2^31 elements, a 4 GiB bulk string, nesting deeper than hiredis supports), or its bytes exceed
/// them. Bulk payloads are skipped, not read; header lines are a few bytes. A value type: the
/// connection's handler owns one and feeds it every buffer in order.
package struct RESPFrameGuard: Sendable {
    private enum Mode: Sendable {
        /// Expecting a type byte.
        case type
        /// Inside a `+` or `-` line: skip to its `\n`.
        case text
        /// Inside a `:`, `$` or `*` header: a decimal number, possibly negative.
        case number(kind: UInt8, value: Int, negative: Bool, digits: Int)
        /// Inside a bulk string's payload (and its `\r\n`).
        case bulk(remaining: Int)
    }

    package let limits: RESPReplyLimits
    private var mode: Mode = .type
    /// Elements still to come at each open array level.
    private var open: [Int] = []
    /// Bytes of the current top-level reply seen so far.
    private var replyBytes = 0

    package init(limits: RESPReplyLimits = RESPReplyLimits()) {
        self.limits = limits
    }

    /// Follows `bytes`; throws ``RedisError/Code/protocolError`` saying which limit a reply broke.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        var index = 0
        let count = bytes.count
        while index < count {
            switch mode {
            case .bulk(let remaining):
                let take = min(remaining, count - index)
                index += take
                try add(take)
                if take == remaining {
                    mode = .type
                    elementDone()
                } else {
                    mode = .bulk(remaining: remaining - take)
                }
            case .text:
                var end = index
                while end < count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                if end < count {
                    try add(end + 1 - index)
                    index = end + 1
                    mode = .type
                    elementDone()
                } else {
                    try add(count - index)
                    index = count
                }
            case .type:
                let byte = bytes[index]
                index += 1
                try add(1)
                switch byte {
                case UInt8(ascii: "+"), UInt8(ascii: "-"): mode = .text
                case UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"): mode = .number(kind: byte, value: 0, negative: false, digits: 0)
                default: throw RedisError(code: .protocolError, message: "the server sent a reply of unknown type byte \(byte); this is not a RESP2 Redis reply")
                }
            case .number(let kind, var value, var negative, var digits):
                let byte = bytes[index]
                index += 1
                try add(1)
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    digits += 1
                    guard digits <= 19 else { throw RedisError(code: .protocolError, message: "the server sent a reply header with a number of more than 19 digits") }
                    let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
                    let (sum, overflowB) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                    guard !overflowA, !overflowB else { throw RedisError(code: .protocolError, message: "the server sent a reply header whose number does not fit 64 bits") }
                    value = sum
                    mode = .number(kind: kind, value: value, negative: negative, digits: digits)
                case UInt8(ascii: "-") where digits == 0 && !negative:
                    negative = true
                    mode = .number(kind: kind, value: value, negative: negative, digits: digits)
                case UInt8(ascii: "\r"):
                    break
                case UInt8(ascii: "\n"):
                    try headerDone(kind: kind, value: negative ? -value : value, digits: digits)
                default:
                    throw RedisError(code: .protocolError, message: "the server sent a malformed reply header (byte \(byte) in a number)")
                }
            }
        }
    }

    private mutating func add(_ bytes: Int) throws(RedisError) {
        replyBytes += bytes
        if replyBytes > limits.maxReplyBytes {
            throw RedisError(code: .protocolError, message: "a reply exceeded maxReplyBytes (\(limits.maxReplyBytes)); the connection is closed. Raise RedisConfiguration.replyLimits.maxReplyBytes if replies this large are expected")
        }
    }

    private mutating func headerDone(kind: UInt8, value: Int, digits: Int) throws(RedisError) {
        guard digits > 0 else { throw RedisError(code: .protocolError, message: "the server sent a reply header without a number") }
        switch kind {
        case UInt8(ascii: "$"):
            if value < 0 {
                guard value == -1 else { throw RedisError(code: .protocolError, message: "the server declared a bulk string of \(value) bytes") }
                mode = .type
                elementDone()
                return
            }
            guard value <= limits.maxReplyBytes - replyBytes - 2 else {
                throw RedisError(code: .protocolError, message: "the server declared a bulk string of \(value) bytes, which would exceed maxReplyBytes (\(limits.maxReplyBytes)); the connection is closed before reading it. Raise RedisConfiguration.replyLimits.maxReplyBytes if values this large are expected")
            }
            mode = .bulk(remaining: value + 2)
        case UInt8(ascii: "*"):
            mode = .type
            if value < 0 {
                guard value == -1 else { throw RedisError(code: .protocolError, message: "the server declared an array of \(value) elements") }
                elementDone()
                return
            }
            guard value <= limits.maxArrayElements else {
                throw RedisError(code: .protocolError, message: "the server declared an array of \(value) elements, over maxArrayElements (\(limits.maxArrayElements)); the connection is closed before allocating it")
            }
            if value == 0 {
                elementDone()
                return
            }
            guard open.count < limits.maxDepth else {
                throw RedisError(code: .protocolError, message: "the server sent arrays nested deeper than \(limits.maxDepth)")
            }
            open.append(value)
        default:  // ":" integer
            mode = .type
            elementDone()
        }
    }

    /// One element (or a whole array) ended: count it against its parent; a top-level reply resets the byte count.
    private mutating func elementDone() {
        while let last = open.last {
            if last > 1 {
                open[open.count - 1] = last - 1
                return
            }
            open.removeLast()
        }
        replyBytes = 0
    }
}
