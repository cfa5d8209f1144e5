import Foundation

/// A simulated `/v1/embeddings` request and its deterministic answer: for each input, a unit
/// vector of `dimensions` (default 8) float32 components derived from the FNV-1a hash of the input
/// text (token-id inputs are hashed as their decimal ids joined by spaces). Same input, same vector.
struct SimulatedEmbeddings: Sendable {
    /// The requested model (echoed).
    var model: String
    /// The inputs, as texts.
    var texts: [String]
    /// The vector length.
    var dimensions: Int

    /// Parses a request body (a string, strings, token ids or arrays of token ids as `input`).
    static func parse(_ body: [UInt8]) -> Result<SimulatedEmbeddings, RequestError> {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return .failure(RequestError(message: "We could not parse the JSON body of your request."))
        }
        guard let model = object["model"] as? String else { return .failure(RequestError(message: "Missing required parameter: 'model'.")) }
        let dimensions = (object["dimensions"] as? Int) ?? 8
        guard (1...4_096).contains(dimensions) else { return .failure(RequestError(message: "Invalid 'dimensions'.")) }
        var texts: [String] = []
        switch object["input"] {
        case let text as String:
            texts = [text]
        case let items as [Any]:
            if items.allSatisfy({ $0 is Int }) {
                texts = [items.map { "\($0)" }.joined(separator: " ")]
            } else {
                for item in items {
                    if let text = item as? String { texts.append(text) }
                    else if let ids = item as? [Int] { texts.append(ids.map(String.init).joined(separator: " ")) }
                    else { return .failure(RequestError(message: "Invalid 'input'.")) }
                }
            }
        default:
            return .failure(RequestError(message: "Missing required parameter: 'input'."))
        }
        guard !texts.isEmpty else { return .failure(RequestError(message: "Invalid 'input': empty array.")) }
        return .success(SimulatedEmbeddings(model: model, texts: texts, dimensions: dimensions))
    }

    /// The vector of `text`.
    static func vector(_ text: String, dimensions: Int) -> [Float] {
        var hash: UInt32 = 0x811C_9DC5
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        var generator = SplitMix64(seed: UInt64(hash))
        let raw = (0..<dimensions).map { _ in Float(Double(generator.next() % 2_000_001) / 1_000_000 - 1) }
        let norm = raw.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? raw.map { $0 / norm } : raw
    }

    /// The response body: one `embedding` per input, and usage (one token per 4 characters).
    func responseJSON() -> String {
        let data = texts.enumerated().map { index, text in
            let numbers = Self.vector(text, dimensions: dimensions).map { "\($0)" }.joined(separator: ",")
            return #"{"object":"embedding","index":\#(index),"embedding":[\#(numbers)]}"#
        }
        let tokens = texts.reduce(0) { $0 + max(1, ($1.count + 3) / 4) }
        let modelJSON = ResponseJSON.encode([model]).dropFirst().dropLast()
        return #"{"object":"list","data":[\#(data.joined(separator: ","))],"model":\#(modelJSON),"usage":{"prompt_tokens":\#(tokens),"total_tokens":\#(tokens)}}"#
    }
}
