import ArgumentParser
import Foundation
import LLMCache

/// `stampede tune semantic`: picks the similarity threshold from labelled pairs, with and without guards.
struct SemanticTuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "semantic",
        abstract: "Choose the semantic similarity threshold from labelled prompt pairs (precision, recall and false hits per threshold, with and without guards).",
        discussion: """
        Input: JSON lines {"a": "...", "b": "...", "same": true|false, "kind": "negation"} (kind optional).
        The repository ships a starter set of 159 pairs (Benchmarks/semantic/pairs.jsonl): paraphrases (rewording,
        synonyms, word order, typos, terse) and near misses (negations, reversals, entity, product, number and
        date changes, topic neighbours). Label pairs from your own traffic before production.
        Embeddings: the local all-MiniLM-L6-v2 (started for the run) unless --embeddings-url names an
        OpenAI-compatible endpoint (API key in EMBEDDINGS_API_KEY). The threshold you pick only holds for the model
        you measured it with.
        """
    )

    @Option(help: "The labelled pairs (JSON lines).")
    var pairs: String = "Benchmarks/semantic/pairs.jsonl"
    @Option(name: .customLong("embeddings-url"), help: "An OpenAI-compatible API root, e.g. https://api.openai.com/v1 (default: the local model).")
    var embeddingsURL: String?
    @Option(name: .customLong("embeddings-model"), help: "The embedding model at --embeddings-url.")
    var embeddingsModel: String?
    @Option(name: .customLong("target-precision"), help: "The precision the recommended threshold must reach (0.5-1).")
    var targetPrecision: Double = 0.99
    @Option(help: "Write an SVG chart of precision and recall per threshold (a .html name wraps it in a page).")
    var chart: String?
    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        _ = try NumericInput.number(targetPrecision, "--target-precision", in: 0.5...1)
    }

    func run() async throws {
        let labelled = try LabelledPair.load(pairs)
        let (calibration, source) = try await EmbeddingSource.with(url: embeddingsURL, model: embeddingsModel) { endpoint in
            let vectors = try await EmbeddingSource.embedAll(labelled.flatMap { [$0.a, $0.b] }, with: endpoint.client)
            return (Self.calibrate(labelled, vectors: vectors, targetPrecision: targetPrecision), endpoint.description)
        }
        let report = SemanticTuneReport(calibration: calibration, source: source, pairsFile: pairs)
        if let chart {
            let svg = report.svg
            let text = chart.hasSuffix(".html") ? "<!doctype html><html><head><meta charset=\"utf-8\"><title>stampede tune semantic</title></head><body>\n\(svg)</body></html>\n" : svg
            try Data(text.utf8).write(to: URL(fileURLWithPath: chart))
            Console.note("wrote \(chart)")
        }
        print(json ? report.json : report.table)
    }

    static func calibrate(_ pairs: [LabelledPair], vectors: [String: [Float]], targetPrecision: Double, guards: SemanticGuards = SemanticGuards()) -> SemanticCalibration {
        let scored = pairs.map { pair in
            SemanticCalibration.Scored(
                pair: pair,
                similarity: SemanticCalibration.cosine(vectors[pair.a] ?? [], vectors[pair.b] ?? []),
                rejectedBy: guards.rejection(prompt: pair.a, candidate: pair.b)
            )
        }
        return SemanticCalibration(scored: scored, targetPrecision: targetPrecision)
    }
}
