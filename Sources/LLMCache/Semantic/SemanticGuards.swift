/// Checks applied to a semantic match before its answer is served: cosine similarity alone cannot
/// tell "move money from A to B" from "from B to A" (similarity ≈ 0.996 with all-MiniLM-L6-v2),
/// nor "Paris France capital" from "Paris Texas population". Each check can be switched off; each
/// rejection is counted by name (`numbers`, `quoted_text`, `negation`, `relation_order`, `entities`).
public struct SemanticGuards: Sendable, Hashable {
    /// Numbers (digits and number words) must be the same, in the same order ("iPhone 14" ≠ "iPhone 15").
    public var numbers: Bool
    /// Quoted strings must be the same.
    public var quotedText: Bool
    /// The count of negation words (not, no, never, without, n't, …) must be the same.
    public var negations: Bool
    /// Two words joined by a directional word (to, from, than, into, vs, before, after, …) must not
    /// swap places ("convert USD to EUR" ≠ "convert EUR to USD").
    public var relationOrder: Bool
    /// Capitalised names (places, people, products) of each prompt must appear in the other.
    public var entities: Bool

    /// Creates guards; all on by default.
    public init(numbers: Bool = true, quotedText: Bool = true, negations: Bool = true, relationOrder: Bool = true, entities: Bool = true) {
        self.numbers = numbers
        self.quotedText = quotedText
        self.negations = negations
        self.relationOrder = relationOrder
        self.entities = entities
    }

    /// Every guard off (cosine similarity alone decides).
    public static let none = SemanticGuards(numbers: false, quotedText: false, negations: false, relationOrder: false, entities: false)

    static let negationWords: Set<String> = [
        "not", "no", "never", "without", "none", "nobody", "nothing", "neither", "nor", "cannot", "n't", "unable", "except", "excluding",
    ]
    static let relationWords: Set<String> = [
        "to", "from", "than", "into", "onto", "vs", "versus", "before", "after", "above", "below", "toward", "towards", "over", "under", "instead",
    ]
    static let stopWords: Set<String> = [
        "a", "an", "the", "of", "in", "on", "for", "and", "or", "is", "are", "was", "be", "do", "does", "did", "i", "you", "my",
        "your", "it", "its", "how", "what", "which", "who", "why", "when", "where", "can", "could", "should", "would", "will",
        "me", "we", "our", "this", "that", "with", "at", "by", "as", "so", "if", "there", "s",
    ]

    /// The first guard that rejects `candidate` as an answer to `prompt`, or `nil` when all pass.
    /// The result names the guard (`numbers`, `quoted_text`, `negation`, `relation_order`, `entities`).
    public func rejection(prompt: String, candidate: String) -> String? {
        let a = PromptText(prompt)
        let b = PromptText(candidate)
        if numbers, a.numbers != b.numbers { return "numbers" }
        if quotedText, Set(a.quoted) != Set(b.quoted) { return "quoted_text" }
        if negations {
            let countA = a.words.count(where: Self.negationWords.contains)
            let countB = b.words.count(where: Self.negationWords.contains)
            if countA != countB { return "negation" }
        }
        if relationOrder, Self.swapsRelation(a.words, b.words) || Self.swapsRelation(b.words, a.words) { return "relation_order" }
        if entities {
            let wordsA = Set(a.words)
            let wordsB = Set(b.words)
            if a.entities.contains(where: { !wordsB.contains($0) }) || b.entities.contains(where: { !wordsA.contains($0) }) { return "entities" }
        }
        return nil
    }

    /// Whether two content words that `first` joins by a directional word appear in the opposite
    /// order in `second`.
    static func swapsRelation(_ first: [String], _ second: [String]) -> Bool {
        var positions: [String: Int] = [:]
        for (index, word) in second.enumerated() where positions[word] == nil { positions[word] = index }
        for (relationIndex, relation) in first.enumerated() where relationWords.contains(relation) {
            // The nearest content word on each side of the relation word.
            guard let left = first[..<relationIndex].last(where: { !stopWords.contains($0) && !relationWords.contains($0) }),
                  let right = first[(relationIndex + 1)...].first(where: { !stopWords.contains($0) && !relationWords.contains($0) }),
                  left != right,
                  let leftInSecond = positions[left], let rightInSecond = positions[right]
            else { continue }
            if leftInSecond > rightInSecond { return true }
        }
        return false
    }
}
