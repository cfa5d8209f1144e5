import ArgumentParser
import Foundation
import LLMCache

/// `stampede bench codec`: the JSON work on a cached completion's paths, this library's codec
/// against Foundation's `JSONEncoder`/`JSONDecoder` in the same run: storing a completion (every
/// miss), reading it back (every hit), and reading an upstream response (every miss).
struct CodecBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "Benchmark the completion codec: stored encode/decode and upstream-response decode vs JSONEncoder/JSONDecoder."
    )

    @Option(help: "Operations per measurement round.")
    var iterations: Int = 20_000
    @Option(help: "Rounds; the two codecs alternate round by round; the median round is reported.")
    var rounds: Int = 7
    @Option(help: "Characters of answer text in the sample completion.")
    var contentCharacters: Int = 1_000
    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        _ = try NumericInput.integer(iterations, "--iterations", in: 1...100_000_000)
        _ = try NumericInput.integer(rounds, "--rounds", in: 1...1_000)
        _ = try NumericInput.integer(contentCharacters, "--content-characters", in: 0...10_000_000)
    }

    /// The wire shape `JSONDecoder` read before (the baseline for the upstream-response row).
    private struct WireCompletion: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable {
                var content: String?
                var reasoning_content: String?
            }
            var message: Message?
            var finish_reason: String?
        }
        struct Usage: Decodable {
            var prompt_tokens: Int?
            var completion_tokens: Int?
        }
        var id: String?
        var model: String?
        var choices: [Choice]
        var usage: Usage?
    }

    struct Row {
        var name: String
        var foundationNanos: Double
        var ourNanos: Double
    }

    func run() throws {
        let words = ["the", "cache", "answers", "\"quoted\"", "once", "per", "question,", "fleet-wide.\n", "Résumé", "naïve", "→", "tokens"]
        var content = ""
        var index = 0
        while content.utf8.count < contentCharacters {
            content += words[index % words.count] + " "
            index += 1
        }
        let completion = ChatCompletion(
            id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", model: "gpt-4o-mini-2024-07-18", content: content, finishReason: "stop",
            usage: .init(promptTokens: 19, completionTokens: 310)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let stored = Array(try encoder.encode(completion))
        guard ChatCompletion(cacheJSON: stored) == completion, try JSONDecoder().decode(ChatCompletion.self, from: Data(completion.cacheJSON())) == completion else {
            throw ValidationError("the two codecs disagree on the sample completion")
        }
        let response = JSONValue.object([
            "id": .string(completion.id), "object": "chat.completion", "created": 1_741_569_952, "model": .string(completion.model),
            "choices": [[
                "index": 0, "message": ["role": "assistant", "content": .string(content), "refusal": nil, "annotations": []],
                "logprobs": nil, "finish_reason": "stop",
            ]],
            "usage": [
                "prompt_tokens": 19, "completion_tokens": 310, "total_tokens": 329,
                "prompt_tokens_details": ["cached_tokens": 0, "audio_tokens": 0],
                "completion_tokens_details": ["reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0],
            ],
            "service_tier": "default", "system_fingerprint": "fp_44709d6fcb",
        ]).canonicalJSON()
        let responseBytes = Array(response.utf8)
        let responseData = Data(response.utf8)

        var rows: [Row] = []
        rows.append(try measure("store a completion (encode)", foundation: {
            Array(try encoder.encode(completion)).count
        }, ours: {
            completion.cacheJSON().count
        }))
        rows.append(try measure("read a stored completion (decode)", foundation: {
            try JSONDecoder().decode(ChatCompletion.self, from: Data(stored)).content.utf8.count
        }, ours: {
            ChatCompletion(cacheJSON: stored)?.content.utf8.count ?? 0
        }))
        rows.append(try measure("read an upstream response (decode)", foundation: {
            try JSONDecoder().decode(WireCompletion.self, from: responseData).choices.count
        }, ours: {
            try CompletionWire.completion(responseBytes, requestedModel: "m").content.utf8.count
        }))
        report(rows, storedBytes: stored.count)
    }

    /// Median per-operation time of each codec over `rounds` alternating rounds.
    private func measure(_ name: String, foundation: () throws -> Int, ours: () throws -> Int) throws -> Row {
        var foundationRounds: [Double] = []
        var ourRounds: [Double] = []
        var sink = 0
        let clock = ContinuousClock()
        for _ in 0..<rounds {
            var start = clock.now
            for _ in 0..<iterations { sink &+= try foundation() }
            foundationRounds.append((clock.now - start).secondsDouble * 1e9 / Double(iterations))
            start = clock.now
            for _ in 0..<iterations { sink &+= try ours() }
            ourRounds.append((clock.now - start).secondsDouble * 1e9 / Double(iterations))
        }
        guard sink != 0 else { throw ValidationError("the codecs produced nothing") }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        return Row(name: name, foundationNanos: median(foundationRounds), ourNanos: median(ourRounds))
    }

    private func report(_ rows: [Row], storedBytes: Int) {
        if json {
            var object: [String: Any] = ["stored_bytes": storedBytes, "iterations": iterations, "rounds": rounds]
            for (row, key) in zip(rows, ["store_encode", "stored_decode", "upstream_decode"]) {
                object["\(key)_foundation_ns"] = row.foundationNanos
                object["\(key)_ns"] = row.ourNanos
                object["\(key)_speedup"] = row.foundationNanos / max(row.ourNanos, 1)
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("a completion of \(storedBytes) stored bytes; median of \(rounds) alternating rounds of \(iterations)")
        for row in rows {
            print(
                row.name.padding(toLength: 38, withPad: " ", startingAt: 0)
                    + String(format: "JSONEncoder/JSONDecoder %8.2f µs   this library %8.2f µs   %5.1f× faster", row.foundationNanos / 1_000, row.ourNanos / 1_000, row.foundationNanos / max(row.ourNanos, 1))
            )
        }
    }
}
