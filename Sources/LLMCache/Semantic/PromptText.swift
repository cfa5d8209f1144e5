/// The words of a prompt as the guards and the cacheability filter see them.
struct PromptText: Sendable {
    /// Lowercased words (letters and digits; `n't` kept as its own word), in order.
    let words: [String]
    /// Words that start with a capital letter (or are all capitals) and are not the first word of
    /// a sentence, lowercased: names of people, places, products.
    let entities: [String]
    /// Numbers as written (digits, without thousands separators) and number words, in order.
    let numbers: [String]
    /// Text between quotes, lowercased.
    let quoted: [String]

    static let numberWords: Set<String> = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
        "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion",
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "half", "double", "twice",
    ]

    init(_ text: String) {
        var words: [String] = []
        var entities: [String] = []
        var numbers: [String] = []
        var quoted: [String] = []
        var current = ""
        var currentIsCapitalised = false
        var sentenceStart = true
        var quote: Character?
        var quotedText = ""
        func finishWord() {
            guard !current.isEmpty else { return }
            var word = current.lowercased()
            if word.hasSuffix("n't") || word.hasSuffix("n’t") {
                word.removeLast(3)
                if !word.isEmpty { words.append(word) }
                words.append("n't")
            } else {
                word = word.replacingOccurrences(of: "’", with: "'")
                if word.hasSuffix("'s") { word.removeLast(2) }
                let trimmed = word.filter { $0 != "'" }
                if !trimmed.isEmpty { words.append(trimmed) }
                word = trimmed
            }
            let digitsOnly = word.filter { $0 != "," }
            if digitsOnly.first?.isNumber == true {
                numbers.append(digitsOnly)
            } else if Self.numberWords.contains(word) {
                numbers.append(word)
            }
            if currentIsCapitalised, !sentenceStart, word != "i", !word.isEmpty { entities.append(word) }
            sentenceStart = false
            current = ""
            currentIsCapitalised = false
        }
        for character in text {
            if let open = quote {
                let closes = (open == "“" && character == "”") || (open != "“" && character == open)
                if closes {
                    quoted.append(quotedText.lowercased().trimmingSpaces())
                    quote = nil
                    quotedText = ""
                } else {
                    quotedText.append(character)
                }
            } else if (character == "\"" || character == "“") || (character == "'" && current.isEmpty) {
                quote = character
            }
            if character.isLetter || character.isNumber || ((character == "'" || character == "’" || character == "." || character == ",") && !current.isEmpty) {
                if current.isEmpty { currentIsCapitalised = character.isUppercase }
                current.append(character)
            } else {
                // A trailing "." or "," belongs to the sentence, not the word ("3." / "Paris,").
                var ended = false
                while let last = current.last, last == "." || last == "," {
                    current.removeLast()
                    ended = ended || last == "."
                }
                finishWord()
                if ended || character == "." || character == "?" || character == "!" || character == "\n" || character == ":" { sentenceStart = true }
            }
        }
        while let last = current.last, last == "." || last == "," { current.removeLast() }
        finishWord()
        self.words = words
        self.entities = entities
        self.numbers = numbers
        self.quoted = quoted
    }
}

extension String {
    func trimmingSpaces() -> String {
        var result = Substring(self)
        while result.first?.isWhitespace == true { result.removeFirst() }
        while result.last?.isWhitespace == true { result.removeLast() }
        return String(result)
    }
}
