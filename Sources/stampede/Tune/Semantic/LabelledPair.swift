import Foundation

/// One labelled pair of prompts for `stampede tune semantic`: `{"a": "...", "b": "...", "same": true, "kind": "negation"}`.
/// `kind` is optional (figures are also reported per kind: paraphrase kinds, negations, reversals, ...).
struct LabelledPair: Sendable, Hashable, Decodable {
    var a: String
    var b: String
    var same: Bool
    var kind: String?

    var kindLabel: String { kind ?? (same ? "same" : "different") }

    /// Reads a JSON-lines file; blank lines and lines starting with `#` are skipped.
    /// - Throws: `ValidationError`-style messages naming the file and line of the first bad entry.
    static func load(_ path: String) throws -> [LabelledPair] {
        guard let data = FileManager.default.contents(atPath: path) else { throw SemanticTuneError("cannot read \(path)") }
        var pairs: [LabelledPair] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            do {
                let pair = try JSONDecoder().decode(LabelledPair.self, from: Data(text.utf8))
                guard !pair.a.trimmingCharacters(in: .whitespaces).isEmpty, !pair.b.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw SemanticTuneError("empty prompt")
                }
                pairs.append(pair)
            } catch {
                throw SemanticTuneError("\(path):\(number + 1): not a labelled pair {\"a\": ..., \"b\": ..., \"same\": true|false} (\(error))")
            }
        }
        guard pairs.contains(where: \.same), pairs.contains(where: { !$0.same }) else {
            throw SemanticTuneError("\(path) needs pairs of both classes (same: true and same: false); it has \(pairs.count) pairs")
        }
        return pairs
    }
}
