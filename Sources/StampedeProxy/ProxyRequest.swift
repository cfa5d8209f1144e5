import Foundation
import Hummingbird
import LLMCache
import NIOCore

/// What every cached route reads first: the caller's tenant (from its virtual key), the body's
/// bytes (within the size limit), and the cache controls of its `Cache-Control` header (a body's
/// `cache` object is applied once the body is parsed).
struct ProxyRequest {
    var tenant: Tenant
    var bytes: ByteBuffer
    var directives: CacheDirectives

    /// Reads `request`.
    /// - Throws: ``ProxyError`` 401, 413 or 400.
    static func read(_ request: Request, context: ProxyContext) async throws -> ProxyRequest {
        let tenant = try context.tenants.authenticate(authorization: request.headers[.authorization])
        var request = request
        let bytes: ByteBuffer
        do {
            bytes = try await request.collectBody(upTo: context.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ProxyError(status: .contentTooLarge, message: "the request body is larger than \(context.maxBodyBytes) bytes", type: "invalid_request_error", code: "request_too_large")
        }
        var directives = CacheDirectives()
        if let header = request.headers[.cacheControl] { try directives.apply(cacheControl: header) }
        return ProxyRequest(tenant: tenant, bytes: bytes, directives: directives)
    }

    /// The body as a JSON object.
    /// - Throws: ``ProxyError`` 400 when it is not valid JSON or not an object.
    static func jsonObject(_ bytes: ByteBuffer) throws(ProxyError) -> [String: JSONValue] {
        let json: JSONValue
        do {
            json = try JSONValue(parsing: Data(bytes.readableBytesView))
        } catch {
            throw ProxyError.badRequest("the body is not valid JSON: \(error)")
        }
        guard case .object(let object) = json else { throw ProxyError.badRequest("the body must be a JSON object") }
        return object
    }

    /// The body as a JSON object without its `cache` object, which is applied to ``directives``.
    /// - Throws: ``ProxyError`` 400.
    mutating func jsonBody() throws(ProxyError) -> [String: JSONValue] {
        var object = try Self.jsonObject(bytes)
        if let cache = object.removeValue(forKey: "cache") { try directives.apply(cacheObject: cache) }
        return object
    }

    /// Checks that the tenant may use `model`.
    /// - Throws: ``ProxyError`` 403 `model_not_allowed`.
    func checkAllowed(model: String) throws(ProxyError) {
        guard tenant.allows(model: model) else {
            throw ProxyError(status: .forbidden, message: "this API key may not use model '\(model)'", type: "permission_error", code: "model_not_allowed", param: "model")
        }
    }
}
