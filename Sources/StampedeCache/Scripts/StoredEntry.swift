package import NIOCore
import RedisClient

/// A stored entry: the string at `P{E}:v` is a header `sc2 <fu> <su> <ct> <cms> <fence>\n` and then
/// the value bytes. `su` (servable-until = fresh-until + the policy's staleFor) bounds every
/// answer; the key's expiry is only how long Redis keeps the bytes (hot keys keep them longer).
package struct StoredEntry: Sendable {
    package var value: ByteBuffer
    package var freshUntil: Int64
    /// Servable-until: no answer is served from this entry at or after this server time.
    package var staleUntil: Int64
    package var createdAt: Int64
    package var computeMillis: Int64
    package var fence: Int64
    /// The Redis server's time when the entry was read.
    package var now: Int64
    /// This process's clock when the entry was read (to age the entry while it is held, e.g. as a
    /// fail-safe fallback: the server clock advances at the same rate).
    package var readAt: ContinuousClock.Instant

    /// The longest `su - ct` a valid header can have: the policy's 10-year limit plus slack.
    package static let maximumSpanMillis: Int64 = 316_000_000_000
    /// Fence tokens stay below 10^15 (15 digits, exact in a Lua double).
    package static let tokenLimit: Int64 = 1_000_000_000_000_000

    /// The server time now, estimated from the read and this process's elapsed time.
    package func serverNow(at instant: ContinuousClock.Instant = .now) -> Int64 {
        now + max(0, (instant - readAt).wholeMilliseconds)
    }

    package var age: Duration { .milliseconds(max(0, now - createdAt)) }
    package var staleness: Duration { .milliseconds(max(0, now - freshUntil)) }
    package var isFresh: Bool { now < freshUntil }
    package var remainingFreshness: Duration { .milliseconds(max(0, freshUntil - now)) }

    /// The entry as a fail-safe for a caller that accepts at most `limit` of staleness on failure
    /// (`stale-if-error`): its servable-until is brought forward to fresh-until + `limit`; `nil`
    /// when it is already staler than that. `nil` limit: unchanged.
    package func limitingFailSafe(to limit: Duration?) -> StoredEntry? {
        guard let limit else { return self }
        guard staleness <= limit else { return nil }
        var copy = self
        let (seconds, attoseconds) = limit.components
        let limitMillis = seconds > 316_000_000 ? Self.maximumSpanMillis : seconds * 1_000 + attoseconds / 1_000_000_000_000_000
        copy.staleUntil = min(staleUntil, freshUntil + limitMillis)
        return copy
    }

    /// The same entry as it is at `instant` (its server time advanced by the time held here).
    package func aged(to instant: ContinuousClock.Instant = .now) -> StoredEntry {
        var copy = self
        copy.now = serverNow(at: instant)
        copy.readAt = instant
        return copy
    }

    /// Whether the entry may still be served (before its servable-until), at `instant`.
    package func isServable(at instant: ContinuousClock.Instant = .now) -> Bool {
        serverNow(at: instant) < staleUntil
    }

    /// Parses a stored blob; `nil` if its header is not a valid `sc2` header: five decimal fields of
    /// at most 16 digits and 2^53-1 (like the scripts: Lua numbers are doubles), with
    /// `ct <= fu <= su`, `su - ct <=` ``maximumSpanMillis`` and a fence below 10^15 - 1.
    package init?(blob: ByteBuffer, now: Int64, readAt: ContinuousClock.Instant = .now) {
        // One pass over the header's bytes in place (no copies, no allocation: this runs on every hit).
        guard let (fields, headerLength) = blob.withUnsafeReadableBytes({ Self.parseHeader($0) }) else { return nil }
        let (fu, su, ct, cms, fence) = fields
        guard ct <= fu, fu <= su, su - ct <= Self.maximumSpanMillis, fence < Self.tokenLimit - 1 else { return nil }
        guard let value = blob.getSlice(at: blob.readerIndex + headerLength, length: blob.readableBytes - headerLength) else { return nil }
        self.value = value
        self.freshUntil = fu
        self.staleUntil = su
        self.createdAt = ct
        self.computeMillis = cms
        self.fence = fence
        self.now = now
        self.readAt = readAt
    }

    /// The five fields of an `sc2` header at the start of `bytes` and the header's length
    /// (newline included); `nil` unless it is `sc2 ` then five space-separated decimals of 1-16
    /// digits, each at most 2^53-1, then a newline, within the first 96 bytes.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> ((Int64, Int64, Int64, Int64, Int64), Int)? {
        let limit = min(bytes.count, 96)
        guard limit > 4, bytes[0] == UInt8(ascii: "s"), bytes[1] == UInt8(ascii: "c"), bytes[2] == UInt8(ascii: "2"),
              bytes[3] == UInt8(ascii: " ") else { return nil }
        var fields: (Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0)
        var count = 0
        var current: Int64 = 0
        var digits = 0
        var index = 4
        while index < limit {
            let byte = bytes[index]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                guard digits > 0, count < 5 else { return nil }
                switch count {
                case 0: fields.0 = current
                case 1: fields.1 = current
                case 2: fields.2 = current
                case 3: fields.3 = current
                default: fields.4 = current
                }
                count += 1
                current = 0
                digits = 0
                if byte == UInt8(ascii: "\n") {
                    return count == 5 ? (fields, index + 1) : nil
                }
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 16 {
                current = current * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 9_007_199_254_740_991 else { return nil }
            } else {
                return nil
            }
            index += 1
        }
        return nil
    }
}
