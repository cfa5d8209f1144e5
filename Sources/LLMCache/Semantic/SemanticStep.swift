import StampedeCache
import Synchronization

/// One request's pass through the semantic layer. ``run()`` is called from inside the exact key's
/// computation (only the worker holding the exact key's lock gets there); ``finish(_:)`` after
/// the cache answered, to complete or discard the request's semantic document.
final class SemanticStep: Sendable {
    private struct State {
        var ran = false
        var finished = false
        var document: SemanticDocument?
        var counts = SemanticLayer.Counts()
        var match: SemanticMatch?
    }

    let layer: SemanticLayer
    let text: String
    let messageIndices: [Int]
    let request: ChatRequest
    let key: RequestKey
    let keyOptions: RequestKeyOptions
    let namespace: String
    let cache: StampedeCache
    let threshold: Double
    let freshFor: Duration
    let pendingTTL: Duration
    let callUpstream: @Sendable () async throws -> Computed<ChatCompletion>
    private let state = Mutex(State())

    init(
        layer: SemanticLayer, text: String, messageIndices: [Int], request: ChatRequest, key: RequestKey, keyOptions: RequestKeyOptions,
        namespace: String, cache: StampedeCache, threshold: Double, freshFor: Duration, pendingTTL: Duration,
        callUpstream: @escaping @Sendable () async throws -> Computed<ChatCompletion>
    ) {
        self.layer = layer
        self.text = text
        self.messageIndices = messageIndices
        self.request = request
        self.key = key
        self.keyOptions = keyOptions
        self.namespace = namespace
        self.cache = cache
        self.threshold = threshold
        self.freshFor = freshFor
        self.pendingTTL = pendingTTL
        self.callUpstream = callUpstream
    }

    /// What the step counted (`nil` if it did not run in this call).
    var counts: SemanticLayer.Counts? { state.withLock { $0.ran ? $0.counts : nil } }

    /// Whether the answer came from the semantic layer (no upstream call by this request).
    var servedWithoutUpstream: Bool { state.withLock { $0.match != nil } }

    /// The semantic answer, or `nil` to compute as usual (this request's document is then pending
    /// until ``finish(_:)``).
    func run() async throws -> Computed<ChatCompletion>? {
        // A background refresh (stale or early) runs after its caller was answered: no step.
        guard state.withLock({ state in
            guard !state.finished, !state.ran else { return false }
            state.ran = true
            return true
        }) else { return nil }
        let generation = await cache.generationForKeys()
        let context = request.semanticContext(options: keyOptions, messageIndices: messageIndices, namespace: namespace, generation: generation)
        let documentKey = layer.documentKey(namespace: namespace, generation: generation, cacheKey: key.cacheKey)
        var counts = SemanticLayer.Counts()
        var registered: SemanticDocument?
        let finding = await layer.find(
            text: text, context: context, cacheKey: key.cacheKey, documentKey: documentKey, namespace: namespace,
            threshold: threshold, pendingTTL: pendingTTL, counts: &counts, registered: &registered
        )
        let finishedMeanwhile = state.withLock { state in
            state.counts = counts
            state.document = registered
            return state.finished
        }
        if finishedMeanwhile {
            await discard()
            return nil
        }
        switch finding {
        case .none:
            return nil
        case .cached(let completion, let similarity, let matchedKey, let remaining):
            state.withLock { $0.match = SemanticMatch(kind: .cachedAnswer, similarity: similarity, matchedKey: matchedKey) }
            await discard()
            // The back-filled exact entry keeps the matched answer's remaining freshness, so the
            // answer is never served older than the original freshFor + staleFor.
            return .storeWithFreshness(completion, freshFor: remaining)
        case .inFlight(let neighbor):
            return try await follow(neighbor)
        }
    }

    /// Waits for an earlier similar request's computation (as a follower of its exact key). If that
    /// computation is gone (its worker died, it failed), this request computes its own answer under
    /// that key's lock and hands it over without storing it there.
    private func follow(_ neighbor: SemanticNeighbor) async throws -> Computed<ChatCompletion>? {
        let own = Mutex<Computed<ChatCompletion>?>(nil)
        let callUpstream = self.callUpstream
        let result: CacheResult<ChatCompletion>
        do {
            result = try await cache.value(for: neighbor.cacheKey, as: ChatCompletion.self, options: CacheRequestOptions(maxStale: .zero)) { () async throws -> Computed<ChatCompletion> in
                let computed = try await callUpstream()
                own.withLock { $0 = computed }
                return .deliverWithoutStoring(computed.value, reason: "computed for a similar request; stored under that request's own key")
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if let computed = own.withLock({ $0 }) { return computed }
            layer.logger.info("the similar request's computation failed; computing this one", metadata: ["key": "\(key)", "error": "\(error)"])
            return nil
        }
        if let computed = own.withLock({ $0 }) { return computed }
        state.withLock { $0.match = SemanticMatch(kind: .waitedForSimilarComputation, similarity: neighbor.similarity, matchedKey: neighbor.cacheKey) }
        await discard()
        return .storeWithFreshness(result.value, freshFor: max(.milliseconds(1), freshFor - result.age))
    }

    /// Completes this request's document with the stored answer, or discards it; returns the match.
    func finish(_ result: CacheResult<ChatCompletion>) async -> SemanticMatch? {
        let (document, match) = state.withLock { state in
            state.finished = true
            defer { state.document = nil }
            return (state.document, state.match)
        }
        guard let document else { return match }
        if match == nil, result.computedHere, result.notCachedBecause == nil, let freshUntil = result.freshUntilMillis {
            await layer.complete(document, answer: result.value, freshUntilMillis: freshUntil)
        } else {
            await layer.discard(documentKey: document.key)
        }
        return match
    }

    /// The request failed: discard its document.
    func abandon() async {
        state.withLock { $0.finished = true }
        await discard()
    }

    private func discard() async {
        guard let document = state.withLock({ state -> SemanticDocument? in
            defer { state.document = nil }
            return state.document
        }) else { return }
        await layer.discard(documentKey: document.key)
    }
}
