import LLMCache
import NIOCore
@testable import StampedeProxy
import Testing

@Suite("stampede serve: a hot answer's body is rendered once a second")
struct RecentRenderedCompletionsTests {
    private static func rendered(_ completion: ChatCompletion, created: Int64) -> [UInt8] {
        CompletionJSON.completion(completion, created: created)
    }

    @Test("the same answer in the same second is rendered once; another second, or an answer that differs in any field under the same id, is rendered again; every body is CompletionJSON's, byte for byte")
    func sharedOnlyForTheSameAnswerAndSecond() {
        let table = RecentRenderedCompletions()
        let answer = ChatCompletion(id: "c1", model: "m", content: "Paris.", finishReason: "stop", usage: .init(promptTokens: 3, completionTokens: 2))
        var variants = [answer]
        var content = answer
        content.content = "Lyon."
        var usage = answer
        usage.usage = .init(promptTokens: 3, completionTokens: 3)
        var reasoning = answer
        reasoning.reasoningContent = "think"
        var model = answer
        model.model = "m2"
        variants += [content, usage, reasoning, model]
        for (index, completion) in variants.enumerated() {
            for created: Int64 in [100, 100, 101] {
                let body = table.body(for: completion, created: created)
                #expect(Array(body.readableBytesView) == Self.rendered(completion, created: created), "variant \(index) at \(created)")
            }
        }
        // Per variant: one rendering at 100 (the second ask shares it), one at 101.
        #expect(table.renderCount == 2 * variants.count)
        // Back to the first answer at 101: the slot now holds the last variant, so it renders again.
        let again = table.body(for: answer, created: 101)
        #expect(Array(again.readableBytesView) == Self.rendered(answer, created: 101))
        #expect(table.renderCount == 2 * variants.count + 1)
    }

    @Test("answers over 16 KiB are rendered every time")
    func largeAnswersAreNotKept() {
        let table = RecentRenderedCompletions()
        let large = ChatCompletion(id: "big", model: "m", content: String(repeating: "x", count: RecentRenderedCompletions.maximumBytes), finishReason: "stop", usage: nil)
        for _ in 0..<3 {
            #expect(Array(table.body(for: large, created: 7).readableBytesView) == Self.rendered(large, created: 7))
        }
        #expect(table.renderCount == 3)
    }
}
