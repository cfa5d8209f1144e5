import Foundation
import LLMCache
import LocalServices

/// Where the semantic commands get embeddings: an OpenAI-compatible endpoint given with
/// `--embeddings-url` (key from `EMBEDDINGS_API_KEY`, never from argv), else the local
/// all-MiniLM-L6-v2 server, started (and installed when missing) for the command and stopped after.
enum EmbeddingSource {
    struct Endpoint: Sendable {
        var client: OpenAIEmbeddingsClient
        var description: String
        /// The size of the model's vectors (measured with one call for a remote model).
        var dimensions: Int
    }

    static func with<T: Sendable>(url: String?, model: String?, _ body: (Endpoint) async throws -> T) async throws -> T {
        if let url {
            let key = ProcessInfo.processInfo.environment["EMBEDDINGS_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
            let model = model ?? "text-embedding-3-small"
            let client = OpenAIEmbeddingsClient(configuration: EmbeddingsConfiguration(baseURL: url, model: model, apiKey: key))
            let probe = try await client.embed(["dimension probe"], deadline: .now + .seconds(60))
            return try await body(Endpoint(client: client, description: "\(model) at \(url)", dimensions: probe.vectors.first?.count ?? 0))
        }
        Console.note("starting the local embedding model (all-MiniLM-L6-v2; first run installs it, about 230 MB)")
        return try await LocalEmbedder.withRunning { embedder in
            let client = OpenAIEmbeddingsClient(configuration: EmbeddingsConfiguration(baseURL: embedder.baseURL, model: LocalEmbedder.model))
            return try await body(Endpoint(client: client, description: "\(LocalEmbedder.model) (local, 384-d) at \(embedder.baseURL)", dimensions: LocalEmbedder.dimensions))
        }
    }

    /// Embeds `texts` in batches of 64 (deduplicated), returning a vector per distinct text.
    static func embedAll(_ texts: [String], with client: OpenAIEmbeddingsClient) async throws -> [String: [Float]] {
        var unique: [String] = []
        var seen = Set<String>()
        for text in texts where seen.insert(text).inserted { unique.append(text) }
        var vectors: [String: [Float]] = [:]
        var start = 0
        while start < unique.count {
            let batch = Array(unique[start..<min(start + 64, unique.count)])
            let result = try await client.embed(batch, deadline: .now + .seconds(120))
            for (text, vector) in zip(batch, result.vectors) { vectors[text] = vector }
            start += batch.count
        }
        return vectors
    }
}
