import Foundation
import Crypto

/// An OpenAI `/v1/embeddings` request, read from its JSON body, with the rule for what is part of
/// its cache key: the model, the input, `dimensions` and every other field (an unknown field may
/// change the vectors), but not `user` (who asked) nor `encoding_format` (how the same vectors are
/// written: the cache keeps them once and writes them either way).
public struct EmbeddingsRequest: Sendable, Hashable {
    /// How the caller wants the vectors written.
    public enum EncodingFormat: String, Sendable, Hashable {
        /// JSON arrays of numbers (the API's default).
        case float
        /// Base64 of the little-endian float32 bytes (what the `openai` packages ask for by default).
        case base64
    }

    /// The embedding model.
    public var model: String
    /// The input as sent: a string, an array of strings, an array of token ids, or an array of
    /// arrays of token ids.
    public var input: JSONValue
    /// The requested number of dimensions, if any.
    public var dimensions: Int?
    /// How the vectors are written in the response.
    public var encodingFormat: EncodingFormat
    /// `user`, forwarded but not keyed.
    public var user: String?
    /// Every other field, forwarded and keyed.
    public var otherFields: [String: JSONValue]

    /// The most inputs in one request (OpenAI's limit).
    public static let maximumInputs = 2_048

    /// Reads a request body.
    /// - Throws: ``EmbeddingsRequestError`` naming the field and what is wrong with it.
    public init(openAIBody body: JSONValue) throws(EmbeddingsRequestError) {
        guard case .object(var fields) = body else { throw EmbeddingsRequestError(param: nil, "the body must be a JSON object") }
        guard case .string(let model)? = fields.removeValue(forKey: "model"), !model.isEmpty else {
            throw EmbeddingsRequestError(param: "model", "'model' must be a non-empty string")
        }
        guard let input = fields.removeValue(forKey: "input") else { throw EmbeddingsRequestError(param: "input", "'input' is required") }
        try Self.validate(input: input)
        var dimensions: Int?
        switch fields.removeValue(forKey: "dimensions") {
        case nil, .null?: break
        case .int(let number)? where number >= 1 && number <= 65_536: dimensions = Int(number)
        default: throw EmbeddingsRequestError(param: "dimensions", "'dimensions' must be an integer from 1 to 65536")
        }
        var format = EncodingFormat.float
        switch fields.removeValue(forKey: "encoding_format") {
        case nil, .null?: break
        case .string(let text)?:
            guard let parsed = EncodingFormat(rawValue: text) else {
                throw EmbeddingsRequestError(param: "encoding_format", "'encoding_format' must be 'float' or 'base64', got '\(text.prefix(40))'")
            }
            format = parsed
        default: throw EmbeddingsRequestError(param: "encoding_format", "'encoding_format' must be 'float' or 'base64'")
        }
        var user: String?
        switch fields.removeValue(forKey: "user") {
        case nil, .null?: break
        case .string(let text)?: user = text
        default: throw EmbeddingsRequestError(param: "user", "'user' must be a string")
        }
        self.init(model: model, input: input, dimensions: dimensions, encodingFormat: format, user: user, otherFields: fields)
    }

    /// Creates a request (the input is not validated here; ``init(openAIBody:)`` does).
    public init(model: String, input: JSONValue, dimensions: Int? = nil, encodingFormat: EncodingFormat = .float, user: String? = nil, otherFields: [String: JSONValue] = [:]) {
        self.model = model
        self.input = input
        self.dimensions = dimensions
        self.encodingFormat = encodingFormat
        self.user = user
        self.otherFields = otherFields
    }

    /// How many vectors the request asks for.
    public var inputCount: Int {
        switch input {
        case .array(let items):
            if case .int? = items.first { return 1 }  // one input given as token ids
            return items.count
        default: return 1
        }
    }

    /// The cache key: `emb:` and the SHA-256 of the canonical JSON of the keyed fields.
    public var cacheKey: String {
        var keyed = otherFields
        keyed["model"] = .string(model)
        keyed["input"] = input
        if let dimensions { keyed["dimensions"] = .int(Int64(dimensions)) }
        return "emb:" + SHA256.hex(Data(JSONValue.object(keyed).canonicalJSON().utf8))
    }

    /// The body sent upstream: every field, with the vectors asked for as floats.
    public var upstreamBody: JSONValue {
        var fields = otherFields
        fields["model"] = .string(model)
        fields["input"] = input
        fields["encoding_format"] = "float"
        if let dimensions { fields["dimensions"] = .int(Int64(dimensions)) }
        if let user { fields["user"] = .string(user) }
        return .object(fields)
    }

    private static func validate(input: JSONValue) throws(EmbeddingsRequestError) {
        func tokens(_ items: [JSONValue]) -> Bool {
            !items.isEmpty && items.allSatisfy { if case .int(let id) = $0 { id >= 0 } else { false } }
        }
        switch input {
        case .string(let text):
            guard !text.isEmpty else { throw EmbeddingsRequestError(param: "input", "'input' must not be empty") }
        case .array(let items):
            guard !items.isEmpty else { throw EmbeddingsRequestError(param: "input", "'input' must not be an empty array") }
            guard items.count <= maximumInputs else {
                throw EmbeddingsRequestError(param: "input", "'input' has \(items.count) items; at most \(maximumInputs) are accepted")
            }
            if tokens(items) { return }
            for item in items {
                switch item {
                case .string(let text) where !text.isEmpty: continue
                case .array(let ids) where tokens(ids): continue
                default:
                    throw EmbeddingsRequestError(param: "input", "'input' must be a string, an array of non-empty strings, or token ids (non-negative integers)")
                }
            }
        default:
            throw EmbeddingsRequestError(param: "input", "'input' must be a string, an array of strings, or token ids")
        }
    }
}
