/// One search result.
package struct SemanticNeighbor: Sendable, Hashable {
    /// The document's Redis key.
    package var documentKey: String
    /// Cosine similarity to the query (1 − the index's cosine distance).
    package var similarity: Double
    /// `true` while its computation is in flight.
    package var pending: Bool
    /// Its embedded text.
    package var text: String
    /// Its request's exact cache key.
    package var cacheKey: String
    /// Its registration order.
    package var sequence: Int64
    /// Its answer (JSON of a ``ChatCompletion``) once done.
    package var answer: String?
}
