import HTTPTypes
import Hummingbird
import LLMCache
import NIOCore
import RedisClient
import StampedeCache

/// `GET /healthz` (the process answers), `GET /readyz` (Redis answers `PING`, the cache's scripts
/// are loaded on every primary, every upstream has its API key) and `GET /metrics` (Prometheus text).
struct HealthEndpoints: Sendable {
    let context: ProxyContext

    func healthz() -> Response {
        ProxyResponses.json("{\"status\":\"ok\"}")
    }

    func readyz() async -> Response {
        var problems: [String] = []
        do {
            _ = try await context.redis.send(RedisCommand("PING"))
            let shas = CacheScripts.all.map { RedisArgument($0.sha1) }
            for reply in try await context.redis.sendToEveryPrimary(RedisCommand("SCRIPT", [RedisArgument("EXISTS")] + shas)) {
                if (reply.array ?? []).contains(where: { $0.int != 1 }) {
                    problems.append("the cache's scripts are not loaded on every primary yet")
                    break
                }
            }
        } catch {
            problems.append("Redis: \(error.message)")
        }
        for upstream in context.upstreams.values.sorted(by: { $0.name < $1.name }) {
            if let variable = upstream.apiKeyEnvironment, context.environment[variable]?.isEmpty ?? true {
                problems.append("upstream '\(upstream.name)': \(variable) is not set")
            }
        }
        if problems.isEmpty { return ProxyResponses.json("{\"status\":\"ready\"}") }
        let body = JSONValue.object(["status": "not ready", "problems": .array(problems.map(JSONValue.string))]).canonicalJSON()
        return ProxyResponses.json(body, status: .serviceUnavailable)
    }

    func metrics() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: context.metricsText())))
    }
}
