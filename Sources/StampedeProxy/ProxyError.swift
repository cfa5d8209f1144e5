public import HTTPTypes
import LLMCache

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with an
/// HTTP status, so OpenAI client libraries raise their usual exceptions.
public struct ProxyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// What went wrong and what to do.
    public var message: String
    /// OpenAI's error type (`invalid_request_error`, `authentication_error`, ...).
    public var type: String
    /// A machine-readable code (`invalid_api_key`, `model_not_allowed`, ...), if any.
    public var code: String?
    /// The request field at fault, if any.
    public var param: String?

    /// Creates an error.
    public init(status: HTTPResponse.Status, message: String, type: String, code: String? = nil, param: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
    }

    /// `<status>: <message>`.
    public var description: String { "\(status.code): \(message)" }

    /// 401, `invalid_api_key`.
    public static func unauthorized(_ message: String) -> ProxyError {
        ProxyError(status: .unauthorized, message: message, type: "authentication_error", code: "invalid_api_key")
    }

    /// 400, `invalid_request_error`.
    public static func badRequest(_ message: String, param: String? = nil) -> ProxyError {
        ProxyError(status: .badRequest, message: message, type: "invalid_request_error", param: param)
    }

    /// The error body as compact JSON.
    public var jsonBody: String {
        let error: JSONValue = .object([
            "message": .string(message), "type": .string(type),
            "param": param.map(JSONValue.string) ?? .null, "code": code.map(JSONValue.string) ?? .null,
        ])
        return JSONValue.object(["error": error]).canonicalJSON()
    }
}
