/// Anything that turns texts into embedding vectors: the OpenAI-compatible HTTP client
/// (``OpenAIEmbeddingsClient``), or your own.
public protocol EmbeddingsUpstream: Sendable {
    /// The model name sent upstream (part of every embedding's cache key).
    var model: String { get }
    /// One vector per text, in the order of `texts`, before `deadline`.
    func embed(_ texts: [String], deadline: ContinuousClock.Instant) async throws -> EmbeddingBatch
}
