/// Where the semantic layer keeps prompt vectors and finds the nearest ones.
///
/// One implementation today (``RediSearchIndex``: `FT.CREATE … VECTOR HNSW`, `FT.SEARCH … KNN`,
/// as on Redis 8, Redis Stack and Redis Cloud). The protocol is small so that a Redis 8
/// vector-set backend (`VADD`/`VSIM`, one key per context, shardable by hash tag) can follow.
package protocol SemanticIndex: Sendable {
    /// The key prefix of this index's documents (documents of other indexes never share it).
    var documentPrefix: String { get }

    /// Creates the index when missing; checks the schema of an existing one.
    /// - Throws: ``SemanticError`` (no vector search, another schema).
    func prepare() async throws

    /// Registers `document` as *pending* (a computation for it is in flight) with the next number
    /// of the namespace's `counter`, atomically, and returns that number with, in the same round
    /// trip, the `k` nearest done documents and the `pendingK` nearest pending ones of its context
    /// (itself included).
    func registerPending(
        _ document: SemanticDocument, counter: String, ttl: Duration, k: Int, pendingK: Int, efRuntime: Int
    ) async throws -> (sequence: Int64, neighbors: [SemanticNeighbor])

    /// The nearest *done* documents of `context` (answers that can be served), nearest first: the
    /// query a lookup sends.
    func nearest(to vector: [Float], context: String, k: Int, efRuntime: Int) async throws -> [SemanticNeighbor]

    /// Writes `document` as done with its answer, expiring at `freshUntilMillis` (Redis server
    /// clock, ms), and removes its pending registration `pendingKey`.
    func complete(_ document: SemanticDocument, pendingKey: String, answer: String, freshUntilMillis: Int64) async throws

    /// Removes documents, in one round trip (failed or unstored computations, invalidation).
    func remove(documentKeys: [String]) async throws

    /// How long a document stays (its answer's remaining freshness), `nil` if it is gone.
    func remainingLifetime(documentKey: String) async throws -> Duration?

    /// Name, documents, dimension and state of the index (`nil` when it does not exist).
    func info() async throws -> SemanticIndexInfo?

    /// Drops the index (and its documents when `deleteDocuments`).
    func drop(deleteDocuments: Bool) async throws
}
