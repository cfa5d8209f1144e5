/// How the semantic layer answered a request (``LLMResult/semantic``).
public struct SemanticMatch: Sendable, Hashable {
    /// How the answer was found.
    public enum Kind: String, Sendable, Hashable {
        /// A cached answer to a similar prompt in the same context.
        case cachedAnswer = "semantic_hit"
        /// A similar prompt's computation was in flight; this request waited for it (semantic herd protection).
        case waitedForSimilarComputation = "semantic_wait"
    }

    /// How the answer was found.
    public var kind: Kind
    /// Cosine similarity between this request's text and the matched prompt.
    public var similarity: Double
    /// The matched request's cache key (no prompt text).
    public var matchedKey: String
}
