/// A JSON document that is valid JSON but not a well-formed OpenAI chat request or message.
public struct ChatRequestFormatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where in the document the problem is, e.g. `messages[2].content[0].type`.
    public let field: String
    /// What is wrong, in words.
    public let problem: String

    /// Creates an error for `field`.
    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    /// `<field>: <problem>`.
    public var description: String { "\(field): \(problem)" }
}

/// Typed readers for fields of an OpenAI JSON object.
struct OpenAIFields {
    let object: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String) throws(ChatRequestFormatError) {
        guard case .object(let object) = value else {
            throw ChatRequestFormatError(field: path.isEmpty ? "(root)" : path, problem: "expected a JSON object")
        }
        self.object = object
        self.path = path
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ problem: String) -> ChatRequestFormatError {
        ChatRequestFormatError(field: fieldPath(key), problem: problem)
    }

    /// The value of `key`, or nil when it is absent or JSON `null`.
    func value(_ key: String) -> JSONValue? {
        switch object[key] {
        case nil, .null?: nil
        case let value?: value
        }
    }

    func string(_ key: String) throws(ChatRequestFormatError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let string) = value else { throw error(key, "expected a string") }
        return string
    }

    func requiredString(_ key: String) throws(ChatRequestFormatError) -> String {
        guard let string = try string(key) else { throw error(key, "is required") }
        return string
    }

    func double(_ key: String) throws(ChatRequestFormatError) -> Double? {
        switch value(key) {
        case nil: return nil
        case .int(let integer)?: return Double(integer)
        case .double(let double)?: return double
        default: throw error(key, "expected a number")
        }
    }

    func int(_ key: String) throws(ChatRequestFormatError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let integer = Self.integer(value) else { throw error(key, "expected an integer") }
        return integer
    }

    static func integer(_ value: JSONValue) -> Int? {
        switch value.numberNormalized {
        case .int(let integer): Int(exactly: integer)
        default: nil
        }
    }
}
