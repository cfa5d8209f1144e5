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
    /// Opposite words must not stand where the other prompt has their opposite: enable/disable,
    /// increase/decrease, import/export, log in/log out, maximum/minimum, … and any word against
    /// its `un`/`dis` form (lock/unlock, follow/unfollow).
    public var opposites: Bool

    /// Creates guards; all on by default.
    public init(numbers: Bool = true, quotedText: Bool = true, negations: Bool = true, relationOrder: Bool = true, entities: Bool = true, opposites: Bool = true) {
        self.numbers = numbers
        self.quotedText = quotedText
        self.negations = negations
        self.relationOrder = relationOrder
        self.entities = entities
        self.opposites = opposites
    }

    /// Every guard off (cosine similarity alone decides).
    public static let none = SemanticGuards(numbers: false, quotedText: false, negations: false, relationOrder: false, entities: false, opposites: false)

    /// Pairs of opposite words (either order). A word against its `un`/`dis` form is caught without a list.
    static let oppositePairs: [(String, String)] = [
        ("increase", "decrease"), ("increase", "reduce"), ("raise", "lower"), ("higher", "lower"), ("high", "low"),
        ("enable", "disable"), ("on", "off"), ("in", "out"), ("import", "export"), ("upload", "download"),
        ("encrypt", "decrypt"), ("add", "remove"), ("add", "delete"), ("install", "uninstall"), ("open", "close"),
        ("start", "stop"), ("buy", "sell"), ("before", "after"), ("maximum", "minimum"), ("max", "min"),
        ("more", "less"), ("most", "least"), ("best", "worst"), ("first", "last"), ("earliest", "latest"),
        ("oldest", "newest"), ("ascending", "descending"), ("arrival", "departure"), ("arrive", "depart"),
        ("login", "logout"), ("show", "hide"), ("accept", "reject"), ("allow", "deny"), ("allow", "block"),
        ("connect", "disconnect"), ("include", "exclude"), ("push", "pull"), ("send", "receive"),
        ("incoming", "outgoing"), ("input", "output"), ("win", "lose"), ("credit", "debit"), ("deposit", "withdraw"),
        ("borrow", "lend"), ("pros", "cons"), ("advantages", "disadvantages"), ("benefits", "risks"),
        ("fastest", "slowest"), ("cheapest", "priciest"), ("safe", "dangerous"), ("hot", "cold"), ("upgrade", "downgrade"),
        ("expand", "collapse"), ("attach", "detach"), ("freeze", "unfreeze"), ("mute", "unmute"),
        ("join", "leave"), ("save", "discard"), ("true", "false"), ("yes", "no"), ("plus", "minus"),
    ]

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
    /// The result names the guard (`numbers`, `quoted_text`, `negation`, `relation_order`,
    /// `entities`, `opposites`).
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
        if opposites, Self.opposed(Set(a.words), Set(b.words)) { return "opposites" }
        return nil
    }

    /// Whether one prompt has a word where the other has its opposite (and neither has both).
    static func opposed(_ a: Set<String>, _ b: Set<String>) -> Bool {
        func swapped(_ x: String, _ y: String) -> Bool {
            (a.contains(x) && !b.contains(x) && b.contains(y) && !a.contains(y))
                || (a.contains(y) && !b.contains(y) && b.contains(x) && !a.contains(x))
        }
        for (x, y) in oppositePairs where swapped(x, y) { return true }
        // "unlock" against "lock", "disconnect" against "connect" (words of 3+ letters).
        for word in a.symmetricDifference(b) where word.count >= 5 {
            for prefix in ["un", "dis"] where word.hasPrefix(prefix) {
                let base = String(word.dropFirst(prefix.count))
                if base.count >= 3, swapped(base, word) { return true }
            }
        }
        return false
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
