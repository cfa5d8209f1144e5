/// One piece of a streamed answer, as an upstream hands it on while the answer is generated.
public enum ChatDelta: Sendable, Hashable {
    /// A piece of the answer text (`delta.content`).
    case content(String)
    /// A piece of the model's reasoning (`delta.reasoning_content` or `delta.reasoning`).
    case reasoning(String)

    /// The piece's text.
    public var text: String {
        switch self {
        case .content(let text), .reasoning(let text): return text
        }
    }
}
