/// Settings of the semantic layer of an ``LLMCache`` (off unless ``LLMCacheConfiguration/semantic`` is set).
///
/// On an exact miss, the cache embeds the request's last user message (or every user message, see
/// ``text``) and looks for the nearest cached prompt (KNN) among the documents with the same
/// *context*: an exact hash of everything else that changes the answer (model, system prompt, earlier turns, every parameter, prompt
/// version, namespace and generation). A neighbour at least ``threshold`` similar (cosine) whose
/// text passes the ``guards`` answers the request; the answer is written under the request's
/// exact key too (back-fill), keeping the matched answer's remaining freshness.
public struct SemanticConfiguration: Sendable {
    /// Where embeddings come from (``OpenAIEmbeddingsClient``, or your own).
    public var embeddings: any EmbeddingsUpstream
    /// The size of the model's vectors (384 for all-MiniLM-L6-v2, 1536 for text-embedding-3-small).
    /// Part of the index name; a model returning another size is a clear error.
    public var dimensions: Int
    /// What is embedded (default: the last user message); the rest of the request is the exact context.
    public var text: SemanticText
    /// The least cosine similarity (0–1) that counts as the same question. 0.92 is typical and
    /// 0.97 conservative; measure yours with `stampede tune semantic` on labelled pairs.
    public var threshold: Double
    /// Checks that catch similar-looking prompts that ask different things (numbers, quotes,
    /// negations, swapped relations, named entities). Each can be switched off.
    public var guards: SemanticGuards
    /// Personal or time-sensitive prompts never matched nor stored semantically (the exact path still applies).
    public var cacheability: SemanticCacheability
    /// Neighbours fetched per lookup (1–100).
    public var k: Int
    /// HNSW search breadth (`EF_RUNTIME`, 1–10000): higher finds the true nearest more often, slower.
    public var efRuntime: Int
    /// How long an embedding stays in the fleet-wide embedding cache.
    public var embeddingCacheTTL: Duration
    /// Micro-batching: at most this many texts per upstream embeddings call (1–2048) ...
    public var maxBatch: Int
    /// ... sent at the latest this long after the first text of a batch arrived (0–1 s).
    public var maxBatchWait: Duration
    /// Each lookup's budget for the embedding call and the search; past it the semantic step is
    /// skipped (counted) and the exact path goes on.
    public var lookupTimeout: Duration
    /// The index name prefix; the full name adds the schema version and ``dimensions``.
    public var indexName: String

    /// Creates a configuration. Defaults: threshold 0.92, all guards on, k 4, EF_RUNTIME 100,
    /// embeddings cached 7 days, batches of up to 64 texts within 2 ms, 5 s lookup budget.
    public init(
        embeddings: any EmbeddingsUpstream,
        dimensions: Int,
        threshold: Double = 0.92,
        text: SemanticText = .lastUserMessage,
        guards: SemanticGuards = SemanticGuards(),
        cacheability: SemanticCacheability = SemanticCacheability(),
        k: Int = 4,
        efRuntime: Int = 100,
        embeddingCacheTTL: Duration = .seconds(7 * 86_400),
        maxBatch: Int = 64,
        maxBatchWait: Duration = .milliseconds(2),
        lookupTimeout: Duration = .seconds(5),
        indexName: String = "stampede-semantic"
    ) {
        self.embeddings = embeddings
        self.dimensions = dimensions
        self.threshold = threshold
        self.text = text
        self.guards = guards
        self.cacheability = cacheability
        self.k = k
        self.efRuntime = efRuntime
        self.embeddingCacheTTL = embeddingCacheTTL
        self.maxBatch = maxBatch
        self.maxBatchWait = maxBatchWait
        self.lookupTimeout = lookupTimeout
        self.indexName = indexName
    }

    /// Checks every number.
    /// - Throws: ``SemanticError/invalidSetting(setting:problem:)`` naming the setting.
    public func validate() throws(SemanticError) {
        guard (1...65_536).contains(dimensions) else { throw .invalidSetting(setting: "dimensions", problem: "must be 1-65536, got \(dimensions)") }
        guard threshold.isFinite, threshold > 0, threshold <= 1 else { throw .invalidSetting(setting: "threshold", problem: "must be in (0, 1], got \(threshold)") }
        guard (1...100).contains(k) else { throw .invalidSetting(setting: "k", problem: "must be 1-100, got \(k)") }
        guard (1...10_000).contains(efRuntime) else { throw .invalidSetting(setting: "efRuntime", problem: "must be 1-10000, got \(efRuntime)") }
        guard (1...2048).contains(maxBatch) else { throw .invalidSetting(setting: "maxBatch", problem: "must be 1-2048, got \(maxBatch)") }
        guard maxBatchWait >= .zero, maxBatchWait <= .seconds(1) else { throw .invalidSetting(setting: "maxBatchWait", problem: "must be 0-1 s, got \(maxBatchWait)") }
        guard embeddingCacheTTL >= .seconds(1) else { throw .invalidSetting(setting: "embeddingCacheTTL", problem: "must be at least 1 s, got \(embeddingCacheTTL)") }
        guard lookupTimeout >= .milliseconds(10), lookupTimeout <= .seconds(600) else { throw .invalidSetting(setting: "lookupTimeout", problem: "must be 10 ms - 600 s, got \(lookupTimeout)") }
        guard !indexName.isEmpty, indexName.utf8.count <= 64,
              indexName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw .invalidSetting(setting: "indexName", problem: "'\(indexName)' must be 1-64 characters of A-Z a-z 0-9 - _")
        }
    }
}
