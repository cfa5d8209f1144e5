import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// `GET /v1/models`: passed through to the tenant's upstream with the upstream's credential (never
/// a virtual key; a pass-through caller's own key); the upstream's status and body come back unchanged.
struct ModelsEndpoint: Sendable {
    let context: ProxyContext
    let metrics: ProxyMetrics

    static let route = "/v1/models"

    func respond(to request: Request) async -> Response {
        let started = ContinuousClock.now
        let response: Response
        do {
            response = try await forward(request)
        } catch {
            response = ProxyResponses.error(ProxyFailure.map(error))
        }
        metrics.record(route: Self.route, status: response.status.code, cache: "none", duration: ContinuousClock.now - started)
        return response
    }

    private func forward(_ request: Request) async throws -> Response {
        let tenant = try context.tenants.authenticate(authorization: request.headers[.authorization])
        guard let upstream = context.upstreams[tenant.upstream] else {
            throw ProxyError(status: .internalServerError, message: "tenant '\(tenant.name)' names an upstream the proxy does not have", type: "server_error")
        }
        var outgoing = HTTPClientRequest(url: upstream.baseURL.hasSuffix("/") ? upstream.baseURL + "models" : upstream.baseURL + "/models")
        if let key = tenant.upstreamAPIKey?.value ?? upstream.apiKeyEnvironment.flatMap({ context.environment[$0] }) {
            outgoing.headers.add(name: "Authorization", value: "Bearer \(key)")
        }
        let answer: HTTPClientResponse
        do {
            answer = try await HTTPClient.shared.execute(outgoing, timeout: .seconds(30))
        } catch {
            throw ProxyError(status: .badGateway, message: "the upstream did not answer /models: \(error)", type: "upstream_error")
        }
        let body = try await answer.body.collect(upTo: 8 << 20)
        var headers = HTTPFields()
        headers[.contentType] = answer.headers.first(name: "Content-Type") ?? "application/json"
        return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: ResponseBody(byteBuffer: body))
    }
}
