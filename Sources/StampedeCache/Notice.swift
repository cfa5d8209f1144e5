package import NIOCore

/// A notice published by a script on the namespace channel.
package enum Notice: Sendable, Equatable {
    case done(token: Int64)
    /// The computation failed; `retryable` is false when a retry cannot fix it (`fatal|…`).
    case failed(token: Int64, message: String, retryable: Bool)
    /// The computation's value was handed off (`P{E}:d`) without being stored, for `reason`.
    case delivered(token: Int64, reason: String)
    case invalidated
    case generation(Int64)

    /// Parses `done|E|token`, `fail|E|token|message`, `fatal|E|token|message`, `deliver|E|token|reason`,
    /// `inval|E`, `gen|N`; returns the entry id and notice.
    package static func parse(_ payload: ByteBuffer) -> (entry: String, notice: Notice)? {
        let text = String(buffer: payload)
        let parts = text.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "done" where parts.count == 3:
            guard let token = Int64(parts[2]) else { return nil }
            return (parts[1], .done(token: token))
        case "fail" where parts.count == 4, "fatal" where parts.count == 4:
            guard let token = Int64(parts[2]) else { return nil }
            return (parts[1], .failed(token: token, message: parts[3], retryable: parts[0] == "fail"))
        case "deliver" where parts.count == 4:
            guard let token = Int64(parts[2]) else { return nil }
            return (parts[1], .delivered(token: token, reason: parts[3]))
        case "inval" where parts.count == 2:
            return (parts[1], .invalidated)
        case "gen" where parts.count == 2:
            guard let generation = Int64(parts[1]) else { return nil }
            return ("", .generation(generation))
        default:
            return nil
        }
    }
}
