/// Why the semantic layer refused to work. Each case says what to change.
public enum SemanticError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The embedding model returned vectors of another size than the index holds.
    case dimensionMismatch(index: Int, embedding: Int, model: String)
    /// An index of this name exists with another schema (made by another version or by hand).
    case schemaMismatch(index: String, problem: String)
    /// Redis has no vector search (`FT.*`): RediSearch is not loaded. The server's message, verbatim.
    case vectorSearchUnavailable(String)
    /// A setting is out of range.
    case invalidSetting(setting: String, problem: String)

    /// One line: what failed and what to do.
    public var description: String {
        switch self {
        case .dimensionMismatch(let index, let embedding, let model):
            return "the embedding model '\(model)' returned \(embedding)-dimensional vectors but the semantic index holds \(index); set SemanticConfiguration.dimensions to \(embedding) (a new index is created for it) or use a \(index)-dimensional model"
        case .schemaMismatch(let index, let problem):
            return "the semantic index '\(index)' exists with another schema (\(problem)); drop it with `stampede semantic index drop` so it is created again"
        case .vectorSearchUnavailable(let message):
            return "this Redis has no vector search (\(message)); use Redis 8, Redis Stack or Redis Cloud, or load RediSearch (`--loadmodule redisearch.so`)"
        case .invalidSetting(let setting, let problem):
            return "invalid semantic setting \(setting): \(problem)"
        }
    }
}
