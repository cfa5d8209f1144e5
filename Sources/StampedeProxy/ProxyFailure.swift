import LLMCache
import StampedeCache

/// Maps what the cache and the upstream throw to OpenAI-shaped errors: an upstream's HTTP error
/// keeps its status and message; timeouts are 504; an unreachable upstream is 502.
enum ProxyFailure {
    static func map(_ error: any Error) -> ProxyError {
        switch error {
        case let error as ProxyError:
            return error
        case let error as UpstreamError:
            switch error {
            case .http(let status, let message, let type, let code):
                return ProxyError(status: .init(code: (100...599).contains(status) ? status : 502), message: message, type: type ?? "upstream_error", code: code)
            case .timedOut:
                return ProxyError(status: .gatewayTimeout, message: error.description, type: "timeout", code: "upstream_timeout")
            case .missingAPIKey:
                return ProxyError(status: .internalServerError, message: "the proxy has no API key for this tenant's upstream (set the variable its api_key_env names)", type: "server_error", code: "upstream_key_missing")
            case .connection, .malformedResponse, .streamCutOff:
                return ProxyError(status: .badGateway, message: error.description, type: "upstream_error")
            }
        case let error as CacheError:
            switch error.code {
            case .computationTimedOut:
                // (The cache's own message names the cache key: not for callers.)
                return ProxyError(status: .gatewayTimeout, message: "the upstream did not answer within the proxy's compute timeout", type: "timeout", code: "upstream_timeout")
            case .waitTimedOut:
                return ProxyError(status: .gatewayTimeout, message: "the answer another caller was waiting for did not arrive in time", type: "timeout", code: "upstream_timeout")
            case .computationFailedElsewhere:
                return ProxyError(status: .badGateway, message: error.upstreamMessage ?? "the upstream call this request waited for failed", type: "upstream_error")
            case .invalidOption:
                return ProxyError.badRequest(error.message)
            case .redisUnavailable, .redisFailure:
                return ProxyError(status: .serviceUnavailable, message: "the cache's Redis is unavailable; see the proxy's log", type: "server_error", code: "cache_unavailable")
            default:
                return ProxyError(status: .internalServerError, message: "the cache failed (\(error.code)); see the proxy's log", type: "server_error")
            }
        case let error as ChatRequestFormatError:
            return ProxyError.badRequest(error.description, param: error.field)
        case is CancellationError:
            return ProxyError(status: .init(code: 499), message: "the client went away", type: "cancelled")
        default:
            return ProxyError(status: .internalServerError, message: "\(error)", type: "server_error")
        }
    }
}
