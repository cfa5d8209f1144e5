/// Anything that turns texts into embedding vectors: the OpenAI-compatible HTTP client
/// (``OpenAIEmbeddingsClient``), or your own.
public protocol EmbeddingsUpstream: Sendable {
    /// The model name sent upstream (part of every embedding's cache key).
    var model: String { get }
    /// One vector per text, in the order of `texts`, before `deadline`.
    func embed(_ texts: [String], deadline: ContinuousClock.Instant) async throws -> EmbeddingBatch
}

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
