import Crypto
import Foundation

extension ChatRequest {
    /// The text the semantic layer embeds and the messages it is taken from (`nil` when there is
    /// no user text, or it is empty after trimming).
    func semanticText(_ selection: SemanticText) -> (text: String, messageIndices: [Int])? {
        let indices: [Int]
        switch selection {
        case .lastUserMessage:
            guard let last = messages.lastIndex(where: { $0.role == .user }) else { return nil }
            indices = [last]
        case .allUserMessages:
            indices = messages.indices.filter { messages[$0].role == .user }
        }
        let text = indices.map { messages[$0].text.trimmingSpaces() }.filter { !$0.isEmpty }.joined(separator: "\n")
        return text.isEmpty ? nil : (text, indices)
    }

    /// The exact hash of everything but the embedded text: the request's key document (model,
    /// every answer-changing parameter, the other messages, the prompt version) with the embedded
    /// messages' content blanked, plus the namespace and its generation. A semantic match must have
    /// the same context, so answers never cross models, system prompts, parameters, tenants or
    /// invalidations.
    func semanticContext(options: RequestKeyOptions, messageIndices: [Int], namespace: String, generation: Int64) -> String {
        var document = keyDocument(options: options)
        if case .object(var object) = document {
            if case .array(var keyed)? = object["messages"] {
                for index in messageIndices where index < keyed.count {
                    guard case .object(var message) = keyed[index] else { continue }
                    message["content"] = .string("\u{1}semantic-text")
                    keyed[index] = .object(message)
                }
                object["messages"] = .array(keyed)
            }
            object["semantic_scope"] = .object(["namespace": .string(namespace), "generation": .int(generation), "schema": .string(RediSearchIndex.schemaVersion)])
            document = .object(object)
        }
        return SHA256.hex(Data(document.canonicalJSON().utf8))
    }
}
