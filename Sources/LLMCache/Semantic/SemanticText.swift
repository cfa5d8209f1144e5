/// Which part of a request the semantic layer embeds; everything else is part of the exact
/// context hash (so it must match exactly for a semantic match).
public enum SemanticText: String, Sendable, Hashable, Codable {
    /// The last user message (the default): earlier turns, system prompt and parameters must be
    /// identical, only the question's wording may differ.
    case lastUserMessage
    /// Every user message, joined by newlines: paraphrased multi-turn conversations can match;
    /// system prompt, assistant turns and parameters must be identical.
    case allUserMessages
}
