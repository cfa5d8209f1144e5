/// An `/v1/embeddings` request body that cannot be used, with the field at fault.
public struct EmbeddingsRequestError: Error, Sendable, CustomStringConvertible {
    /// The field at fault (OpenAI's `param`), if one is.
    public var param: String?
    /// What is wrong, and so what to send instead.
    public var message: String

    init(param: String?, _ message: String) {
        self.param = param
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
