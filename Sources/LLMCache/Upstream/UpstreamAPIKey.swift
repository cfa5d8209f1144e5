/// An upstream API key given per call (``LLMRequestOptions/upstreamAPIKey``) instead of the
/// client's own, as a proxy in pass-through mode does with its caller's key. Its description is
/// redacted, so logging options or errors never shows it.
public struct UpstreamAPIKey: Sendable, Hashable, CustomStringConvertible {
    /// The key.
    public let value: String

    /// Wraps a key.
    public init(_ value: String) {
        self.value = value
    }

    /// `<redacted>`.
    public var description: String { "<redacted>" }

    /// The key of the upstream call the current task makes, set by ``LLMCache`` around the
    /// computation of a call made with ``LLMRequestOptions/upstreamAPIKey``; ``OpenAIClient`` and
    /// ``OpenAIEmbeddingsClient`` send it instead of their configured key.
    @TaskLocal public static var current: UpstreamAPIKey?
}
