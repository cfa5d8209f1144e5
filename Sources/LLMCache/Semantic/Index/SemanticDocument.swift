/// A prompt in the semantic index.
package struct SemanticDocument: Sendable, Hashable {
    /// Its Redis key.
    package var key: String
    /// The exact hash of everything but the embedded text (TAG filter: never matched across contexts).
    package var context: String
    /// The embedded text's vector.
    package var vector: [Float]
    /// The embedded text (the guards compare it with a new prompt).
    package var text: String
    /// The exact cache key of the request (a waiting paraphrase follows its computation).
    package var cacheKey: String
    /// Registration order in the namespace (the earlier of two pending paraphrases leads); set by
    /// the registration.
    package var sequence: Int64 = 0
}
