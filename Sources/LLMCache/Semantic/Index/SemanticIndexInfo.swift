/// What `stampede semantic index info` shows.
public struct SemanticIndexInfo: Sendable, Hashable, Codable {
    /// The index name (with its schema version and dimension).
    public var name: String
    /// Documents indexed (pending and done).
    public var documents: Int
    /// The vector dimension.
    public var dimensions: Int
    /// The distance metric (`COSINE`).
    public var metric: String
    /// The vector algorithm (`HNSW`).
    public var algorithm: String
    /// Percent indexed (100 unless a background scan runs).
    public var percentIndexed: Double
}
