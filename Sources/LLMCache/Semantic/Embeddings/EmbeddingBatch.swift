/// What an embeddings call returned.
public struct EmbeddingBatch: Sendable, Hashable {
    /// One vector per input, in input order.
    public var vectors: [[Float]]
    /// Prompt tokens the upstream counted (0 if it did not say).
    public var promptTokens: Int

    /// Creates a batch.
    public init(vectors: [[Float]], promptTokens: Int) {
        self.vectors = vectors
        self.promptTokens = promptTokens
    }
}
