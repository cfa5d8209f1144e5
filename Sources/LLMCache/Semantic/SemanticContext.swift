import Crypto
import Foundation

extension ChatRequest {
    /// The text the semantic layer embeds: the last user message's text (`nil` when there is none
    /// or it is empty after trimming).
    func semanticText() -> (text: String, messageIndex: Int)? {
        guard let index = messages.lastIndex(where: { $0.role == .user }) else { return nil }
        let text = messages[index].text.trimmingSpaces()
        return text.isEmpty ? nil : (text, index)
    }

    /// The exact hash of everything but the embedded text: the request's key document (model,
    /// every answer-changing parameter, the other messages, the prompt version) with the embedded
    /// message's content blanked, plus the namespace and its generation. A semantic match must have
    /// the same context, so answers never cross models, system prompts, parameters, tenants or
    /// invalidations.
    func semanticContext(options: RequestKeyOptions, messageIndex: Int, namespace: String, generation: Int64) -> String {
        var document = keyDocument(options: options)
        if case .object(var object) = document {
            if case .array(var keyed)? = object["messages"], messageIndex < keyed.count, case .object(var message) = keyed[messageIndex] {
                message["content"] = .string("\u{1}semantic-text")
                keyed[messageIndex] = .object(message)
                object["messages"] = .array(keyed)
            }
            object["semantic_scope"] = .object(["namespace": .string(namespace), "generation": .int(generation), "schema": .string(RediSearchIndex.schemaVersion)])
            document = .object(object)
        }
        return SHA256.hex(Data(document.canonicalJSON().utf8))
    }
}
