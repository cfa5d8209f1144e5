import Foundation
import Hummingbird
import LLMCache
import NIOCore

/// What every cached route reads first: the caller's tenant (from its virtual key), the JSON
/// body (within the size limit) without its `cache` object, and the cache controls from
/// `Cache-Control` and that object.
struct ProxyRequest {
    var tenant: Tenant
    var body: [String: JSONValue]
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
        let json: JSONValue
        do {
            json = try JSONValue(parsing: Data(bytes.readableBytesView))
        } catch {
            throw ProxyError.badRequest("the body is not valid JSON: \(error)")
        }
        guard case .object(var object) = json else { throw ProxyError.badRequest("the body must be a JSON object") }
        var directives = CacheDirectives()
        if let header = request.headers[.cacheControl] { try directives.apply(cacheControl: header) }
        if let cache = object.removeValue(forKey: "cache") { try directives.apply(cacheObject: cache) }
        return ProxyRequest(tenant: tenant, body: object, directives: directives)
    }

    /// Checks that the tenant may use `model`.
    /// - Throws: ``ProxyError`` 403 `model_not_allowed`.
    func checkAllowed(model: String) throws(ProxyError) {
        guard tenant.allows(model: model) else {
            throw ProxyError(status: .forbidden, message: "this API key may not use model '\(model)'", type: "permission_error", code: "model_not_allowed", param: "model")
        }
    }
}
