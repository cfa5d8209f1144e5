// The OpenAI `/v1/embeddings` wire shapes.

struct WireEmbeddingsRequest: Encodable {
    var model: String
    var input: [String]
    var dimensions: Int?
}

struct WireEmbeddingsResponse: Decodable {
    struct Item: Decodable {
        var index: Int?
        var embedding: [Float]
    }
    struct Usage: Decodable {
        var prompt_tokens: Int?
    }
    var data: [Item]
    var usage: Usage?
}

/// The `model` field of a response.
struct WireModelName: Decodable {
    var model: String?
}
