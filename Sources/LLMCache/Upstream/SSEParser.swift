import NIOCore

/// Splits a `text/event-stream` body into the `data:` payloads of its events.
///
/// Events end with a blank line (`\n\n` or `\r\n\r\n`); multi-line `data:` fields are joined with
/// `\n`; comments (`:`) and other fields are ignored.
struct SSEParser {
    private var pending: [UInt8] = []

    /// Feeds bytes; returns the payloads of every event completed by them.
    mutating func feed(_ buffer: ByteBuffer) -> [String] {
        pending.append(contentsOf: buffer.readableBytesView)
        var payloads: [String] = []
        while let (eventEnd, separatorLength) = Self.findEventEnd(pending) {
            let event = String(decoding: pending[..<eventEnd], as: UTF8.self)
            pending.removeFirst(eventEnd + separatorLength)
            var data: [Substring] = []
            for line in event.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
                guard line.hasPrefix("data:") else { continue }
                var value = line.dropFirst(5)
                if value.first == " " { value = value.dropFirst() }
                data.append(value)
            }
            if !data.isEmpty { payloads.append(data.joined(separator: "\n")) }
        }
        return payloads
    }

    /// Bytes received that do not yet form a complete event.
    var bufferedByteCount: Int { pending.count }

    private static func findEventEnd(_ bytes: [UInt8]) -> (Int, Int)? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 10, bytes[index + 1] == 10 { return (index, 2) }
            if index + 3 < bytes.count, bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 { return (index, 4) }
            index += 1
        }
        return nil
    }
}
