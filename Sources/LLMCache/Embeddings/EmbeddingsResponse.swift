public import Foundation

/// The vectors an embeddings upstream answered with, as the cache stores them: the model's name,
/// the vectors (stored as little-endian float32 bytes, so a stored batch is about 4 bytes per
/// dimension rather than the ~11 of JSON numbers) and the token usage.
public struct EmbeddingsResponse: Sendable, Hashable, Codable {
    /// The model that answered.
    public var model: String
    /// One vector per input, in input order.
    public var vectors: [[Float]]
    /// The prompt tokens the upstream counted.
    public var promptTokens: Int

    /// Creates a response.
    public init(model: String, vectors: [[Float]], promptTokens: Int) {
        self.model = model
        self.vectors = vectors
        self.promptTokens = promptTokens
    }

    enum CodingKeys: String, CodingKey {
        case model
        case vectors = "f32le"
        case promptTokens = "prompt_tokens"
    }

    /// Decodes the stored form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(String.self, forKey: .model)
        promptTokens = try container.decode(Int.self, forKey: .promptTokens)
        let blobs = try container.decode([Data].self, forKey: .vectors)
        vectors = try blobs.map { blob in
            guard blob.count % 4 == 0 else {
                throw DecodingError.dataCorruptedError(forKey: .vectors, in: container, debugDescription: "a vector of \(blob.count) bytes is not float32s")
            }
            return Self.floats(blob)
        }
    }

    /// Encodes the stored form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(model, forKey: .model)
        try container.encode(promptTokens, forKey: .promptTokens)
        try container.encode(vectors.map(Self.bytes), forKey: .vectors)
    }

    /// Little-endian float32 bytes of `vector` (the layout of OpenAI's base64 encoding).
    public static func bytes(_ vector: [Float]) -> Data {
        var data = Data(capacity: vector.count * 4)
        for value in vector {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    static func floats(_ blob: Data) -> [Float] {
        var vector: [Float] = []
        vector.reserveCapacity(blob.count / 4)
        var index = blob.startIndex
        while index + 4 <= blob.endIndex {
            let bits = UInt32(blob[index]) | UInt32(blob[index + 1]) << 8 | UInt32(blob[index + 2]) << 16 | UInt32(blob[index + 3]) << 24
            vector.append(Float(bitPattern: bits))
            index += 4
        }
        return vector
    }
}
