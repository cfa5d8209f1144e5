/// Which prompts the semantic layer leaves alone: personal ones (about the asker's own account,
/// orders, bills) and time-sensitive ones (today, right now, latest), whose answer for one asker or
/// moment is wrong for a paraphrase from another. Such prompts are neither looked up nor stored
/// semantically; the exact path (same wording, same context) still caches them unless
/// ``CacheabilityPolicy`` says otherwise.
public struct SemanticCacheability: Sendable {
    /// Phrases matched as whole words, case-insensitively.
    public var phrases: [String]
    /// Extra predicates on the embedded text: return `false` to keep it out of the semantic layer.
    public var rules: [@Sendable (String) -> Bool]

    /// The default phrases: personal (`my account`, `my order`, `my balance`, …) and time-sensitive
    /// (`today`, `right now`, `latest`, `this week`, …).
    public static let defaultPhrases = [
        "my account", "my order", "my orders", "my balance", "my bill", "my invoice", "my booking",
        "my appointment", "my package", "my delivery", "my refund", "my claim", "my ticket",
        "today", "tonight", "tomorrow", "yesterday", "right now", "currently", "at the moment", "this week",
        "this month", "this year", "latest", "breaking", "current price", "stock price", "weather",
    ]

    /// Creates a filter (default: ``defaultPhrases``, no extra rules).
    public init(phrases: [String] = SemanticCacheability.defaultPhrases, rules: [@Sendable (String) -> Bool] = []) {
        self.phrases = phrases
        self.rules = rules
    }

    /// Why `text` stays out of the semantic layer, or `nil` if it may be matched and stored.
    public func reasonToSkip(_ text: String) -> String? {
        let words = PromptText(text).words
        for phrase in phrases {
            let needle = PromptText(phrase).words
            guard !needle.isEmpty, needle.count <= words.count else { continue }
            for start in 0...(words.count - needle.count) where Array(words[start..<(start + needle.count)]) == needle {
                return "personal or time-sensitive ('\(phrase)')"
            }
        }
        for (index, rule) in rules.enumerated() where !rule(text) {
            return "semantic cacheability rule \(index) excluded it"
        }
        return nil
    }
}
