import CoreMetrics
import Synchronization

/// Prices per million tokens, to turn tokens served from the cache into money saved.
public struct PriceTable: Sendable, Hashable, Codable {
    /// One model's prices.
    public struct Price: Sendable, Hashable, Codable {
        /// USD per 1M prompt tokens.
        public var inputPerMillion: Double
        /// USD per 1M completion tokens.
        public var outputPerMillion: Double

        /// Creates a price.
        public init(inputPerMillion: Double, outputPerMillion: Double) {
            self.inputPerMillion = inputPerMillion
            self.outputPerMillion = outputPerMillion
        }
    }

    /// Prices by model name (exact match first, then the longest matching prefix).
    public var models: [String: Price]
    /// The price for models not listed (`nil`: such models save no money in reports).
    public var fallback: Price?

    /// Creates a table.
    public init(models: [String: Price] = [:], fallback: Price? = nil) {
        self.models = models
        self.fallback = fallback
    }

    /// The price that applies to `model`.
    public func price(for model: String) -> Price? {
        if let exact = models[model] { return exact }
        let prefix = models.keys.filter { model.hasPrefix($0) }.max(by: { $0.count < $1.count })
        return prefix.flatMap { models[$0] } ?? fallback
    }

    /// What `usage` would have cost at `model`'s price.
    public func cost(of usage: ChatCompletion.Usage, model: String) -> Double {
        guard let price = price(for: model) else { return 0 }
        return Double(usage.promptTokens) * price.inputPerMillion / 1e6 + Double(usage.completionTokens) * price.outputPerMillion / 1e6
    }
}

/// Counters for one namespace and model.
public struct ModelAccounting: Sendable, Hashable, Codable {
    /// Requests answered.
    public var requests = 0
    /// Answered from a fresh cached value.
    public var freshHits = 0
    /// Answered from a stale cached value (including fail-safe).
    public var staleHits = 0
    /// Answered with another worker's computation (waited for it).
    public var receivedFromOtherWorkers = 0
    /// Upstream calls made by this process (computations).
    public var upstreamCalls = 0
    /// Requests that failed.
    public var failures = 0
    /// Prompt tokens of answers served without an upstream call by this request.
    public var promptTokensServedFromCache = 0
    /// Completion tokens of answers served without an upstream call by this request.
    public var completionTokensServedFromCache = 0
    /// USD those tokens would have cost.
    public var moneySaved = 0.0
    /// Answered by a semantic match: a cached answer to a similar prompt in the same context (no upstream call).
    public var semanticHits = 0
    /// Callers that waited for a similar prompt's computation in flight instead of calling (semantic herd protection).
    public var semanticWaits = 0
    /// Semantic lookups whose nearest cached prompt was below the similarity threshold.
    public var semanticNearMisses = 0
    /// Semantic matches above the threshold refused by a guard (numbers, negation, …).
    public var semanticGuardRejections = 0
    /// Semantic lookups skipped because the embeddings upstream or the vector index failed (the exact path went on).
    public var semanticSkipped = 0
    /// Texts embedded by the embeddings upstream (embedding-cache misses).
    public var embeddingsComputed = 0
    /// Prompt tokens the embeddings upstream counted for them.
    public var embeddingTokens = 0
    /// USD those embedding tokens cost (at the embedding model's input price in ``PriceTable``).
    public var embeddingCost = 0.0
    /// Prompt and completion tokens of answers served by semantic matches (not in the exact-hit token counts above).
    public var semanticTokensSaved = 0
    /// USD those semantic-hit tokens would have cost.
    public var semanticMoneySaved = 0.0

    /// All counters zero.
    public init() {}

    /// Adds another set of counters (saturating at `Int.max`: counters read from Redis can be anything).
    public mutating func add(_ other: ModelAccounting) {
        func sum(_ a: inout Int, _ b: Int) {
            let (result, overflow) = a.addingReportingOverflow(b)
            a = overflow ? (b > 0 ? .max : .min) : result
        }
        sum(&requests, other.requests)
        sum(&freshHits, other.freshHits)
        sum(&staleHits, other.staleHits)
        sum(&receivedFromOtherWorkers, other.receivedFromOtherWorkers)
        sum(&upstreamCalls, other.upstreamCalls)
        sum(&failures, other.failures)
        sum(&promptTokensServedFromCache, other.promptTokensServedFromCache)
        sum(&completionTokensServedFromCache, other.completionTokensServedFromCache)
        moneySaved += other.moneySaved
        sum(&semanticHits, other.semanticHits)
        sum(&semanticWaits, other.semanticWaits)
        sum(&semanticNearMisses, other.semanticNearMisses)
        sum(&semanticGuardRejections, other.semanticGuardRejections)
        sum(&semanticSkipped, other.semanticSkipped)
        sum(&embeddingsComputed, other.embeddingsComputed)
        sum(&embeddingTokens, other.embeddingTokens)
        embeddingCost += other.embeddingCost
        sum(&semanticTokensSaved, other.semanticTokensSaved)
        semanticMoneySaved += other.semanticMoneySaved
    }

    /// Prompt and completion tokens served from the cache (saturating at `Int.max`).
    public var tokensServedFromCache: Int {
        let (sum, overflow) = promptTokensServedFromCache.addingReportingOverflow(completionTokensServedFromCache)
        return overflow ? .max : sum
    }

    /// Hits (fresh, stale, received, semantic) per request.
    public var hitRate: Double {
        requests == 0 ? 0 : (Double(freshHits) + Double(staleHits) + Double(receivedFromOtherWorkers) + Double(semanticHits)) / Double(requests)
    }

    /// The counters as named integers/doubles (the Redis hash fields of the fleet-wide accounting).
    var fields: [(String, Double)] {
        [
            ("requests", Double(requests)), ("fresh_hits", Double(freshHits)), ("stale_hits", Double(staleHits)),
            ("received", Double(receivedFromOtherWorkers)), ("upstream_calls", Double(upstreamCalls)), ("failures", Double(failures)),
            ("prompt_tokens_saved", Double(promptTokensServedFromCache)), ("completion_tokens_saved", Double(completionTokensServedFromCache)),
            ("money_saved", moneySaved),
            ("semantic_hits", Double(semanticHits)), ("semantic_waits", Double(semanticWaits)),
            ("semantic_near_misses", Double(semanticNearMisses)), ("semantic_guard_rejections", Double(semanticGuardRejections)),
            ("semantic_skipped", Double(semanticSkipped)), ("embeddings_computed", Double(embeddingsComputed)),
            ("embedding_tokens", Double(embeddingTokens)), ("embedding_cost", embeddingCost),
            ("semantic_tokens_saved", Double(semanticTokensSaved)), ("semantic_money_saved", semanticMoneySaved),
        ]
    }

    /// Sets a counter read from Redis. Returns `false` (and changes nothing) for a value no counter
    /// can hold: not finite, negative, or past 2^53 for a count (anyone can write to the hash).
    mutating func set(field: String, value: Double) -> Bool {
        guard value.isFinite, value >= 0 else { return false }
        switch field {
        case "money_saved": moneySaved = value; return true
        case "embedding_cost": embeddingCost = value; return true
        case "semantic_money_saved": semanticMoneySaved = value; return true
        default: break
        }
        guard value <= 9_007_199_254_740_992, value.rounded(.towardZero) == value else { return false }
        let count = Int(value)
        switch field {
        case "requests": requests = count
        case "fresh_hits": freshHits = count
        case "stale_hits": staleHits = count
        case "received": receivedFromOtherWorkers = count
        case "upstream_calls": upstreamCalls = count
        case "failures": failures = count
        case "prompt_tokens_saved": promptTokensServedFromCache = count
        case "completion_tokens_saved": completionTokensServedFromCache = count
        case "semantic_hits": semanticHits = count
        case "semantic_waits": semanticWaits = count
        case "semantic_near_misses": semanticNearMisses = count
        case "semantic_guard_rejections": semanticGuardRejections = count
        case "semantic_skipped": semanticSkipped = count
        case "embeddings_computed": embeddingsComputed = count
        case "embedding_tokens": embeddingTokens = count
        case "semantic_tokens_saved": semanticTokensSaved = count
        default: return false
        }
        return true
    }
}

/// Accounting by namespace and model.
public struct AccountingSnapshot: Sendable, Hashable, Codable {
    /// A namespace and model.
    public struct Key: Sendable, Hashable, Codable, Comparable {
        /// The tenant namespace.
        public var namespace: String
        /// The model.
        public var model: String
        /// Orders by namespace, then model.
        public static func < (lhs: Key, rhs: Key) -> Bool { (lhs.namespace, lhs.model) < (rhs.namespace, rhs.model) }
    }

    /// Counters per namespace and model.
    public var entries: [Key: ModelAccounting]
    /// Fields of the accounting hashes that hold no usable counter (`key|field = value`, verbatim),
    /// left out of ``entries``: someone else wrote them, or they overflowed.
    public var invalidFields: [String] = []

    /// Everything added up.
    public var total: ModelAccounting {
        entries.values.reduce(into: ModelAccounting()) { $0.add($1) }
    }
}

/// Collects accounting in this process and emits swift-metrics; hands out deltas to flush to Redis.
final class Accountant: Sendable {
    /// The swift-metrics instruments of one namespace and model, created once (creating an
    /// instrument is a factory lookup; per request it cost about 2% of a hit's CPU). All exist
    /// from the first request, so dashboards see zeros rather than missing series.
    private struct Instruments: Sendable {
        let requests, upstreamCalls, hits, tokensSaved, failures: Counter
        let semanticHits, semanticWaits, semanticNearMisses, semanticGuardRejections, semanticSkipped, embeddingsComputed: Counter
        let moneySaved, semanticMoneySaved: FloatingPointCounter

        init(namespace: String, model: String) {
            let dimensions = [("namespace", namespace), ("model", model)]
            requests = Counter(label: "llmcache_requests_total", dimensions: dimensions)
            upstreamCalls = Counter(label: "llmcache_upstream_calls_total", dimensions: dimensions)
            hits = Counter(label: "llmcache_hits_total", dimensions: dimensions)
            tokensSaved = Counter(label: "llmcache_tokens_saved_total", dimensions: dimensions)
            failures = Counter(label: "llmcache_failures_total", dimensions: dimensions)
            semanticHits = Counter(label: "llmcache_semantic_hits_total", dimensions: dimensions)
            semanticWaits = Counter(label: "llmcache_semantic_waits_total", dimensions: dimensions)
            semanticNearMisses = Counter(label: "llmcache_semantic_near_misses_total", dimensions: dimensions)
            semanticGuardRejections = Counter(label: "llmcache_semantic_guard_rejections_total", dimensions: dimensions)
            semanticSkipped = Counter(label: "llmcache_semantic_skipped_total", dimensions: dimensions)
            embeddingsComputed = Counter(label: "llmcache_embeddings_computed_total", dimensions: dimensions)
            moneySaved = FloatingPointCounter(label: "llmcache_money_saved_usd_total", dimensions: dimensions)
            semanticMoneySaved = FloatingPointCounter(label: "llmcache_semantic_money_saved_usd_total", dimensions: dimensions)
        }
    }

    private struct State {
        var totals: [AccountingSnapshot.Key: ModelAccounting] = [:]
        var unflushed: [AccountingSnapshot.Key: ModelAccounting] = [:]
        /// By metric label and model.
        var instruments: [AccountingSnapshot.Key: Instruments] = [:]
    }

    private let state = Mutex(State())

    /// Adds `change` to `namespace`'s accounting, and to the metrics labelled `label` (the
    /// namespace, or its family's label: ``LLMCacheConfiguration/metricsNamespaceLabels``).
    func record(namespace: String, label: String? = nil, model: String, _ change: ModelAccounting) {
        let key = AccountingSnapshot.Key(namespace: namespace, model: model)
        let labelKey = AccountingSnapshot.Key(namespace: label ?? namespace, model: model)
        let known = state.withLock { state -> Instruments? in
            state.totals[key, default: .init()].add(change)
            state.unflushed[key, default: .init()].add(change)
            return state.instruments[labelKey]
        }
        let instruments = known ?? {
            let created = Instruments(namespace: labelKey.namespace, model: model)
            state.withLock { $0.instruments[labelKey] = created }
            return created
        }()
        instruments.requests.increment(by: change.requests)
        if change.upstreamCalls > 0 { instruments.upstreamCalls.increment(by: change.upstreamCalls) }
        let hits = change.freshHits + change.staleHits + change.receivedFromOtherWorkers
        if hits > 0 { instruments.hits.increment(by: hits) }
        let tokens = change.promptTokensServedFromCache + change.completionTokensServedFromCache
        if tokens > 0 { instruments.tokensSaved.increment(by: tokens) }
        if change.moneySaved > 0 { instruments.moneySaved.increment(by: change.moneySaved) }
        if change.failures > 0 { instruments.failures.increment(by: change.failures) }
        if change.semanticHits > 0 { instruments.semanticHits.increment(by: change.semanticHits) }
        if change.semanticWaits > 0 { instruments.semanticWaits.increment(by: change.semanticWaits) }
        if change.semanticNearMisses > 0 { instruments.semanticNearMisses.increment(by: change.semanticNearMisses) }
        if change.semanticGuardRejections > 0 { instruments.semanticGuardRejections.increment(by: change.semanticGuardRejections) }
        if change.semanticSkipped > 0 { instruments.semanticSkipped.increment(by: change.semanticSkipped) }
        if change.embeddingsComputed > 0 { instruments.embeddingsComputed.increment(by: change.embeddingsComputed) }
        if change.semanticMoneySaved > 0 { instruments.semanticMoneySaved.increment(by: change.semanticMoneySaved) }
    }

    var snapshot: AccountingSnapshot { AccountingSnapshot(entries: state.withLock { $0.totals }) }

    func drainUnflushed() -> [AccountingSnapshot.Key: ModelAccounting] {
        state.withLock { state in
            defer { state.unflushed = [:] }
            return state.unflushed
        }
    }

    /// Puts back a batch that could not be flushed.
    func restore(_ batch: [AccountingSnapshot.Key: ModelAccounting]) {
        state.withLock { state in
            for (key, value) in batch { state.unflushed[key, default: .init()].add(value) }
        }
    }
}
