public import LLMCache

/// A request's cache controls, from HTTP `Cache-Control` (RFC 9111) and from the `cache` object
/// LiteLLM users already send in the body; both mean the same thing here:
///
/// | Control | Meaning |
/// |---|---|
/// | `no-cache` / `{"no-cache": true}` | don't serve a stored answer: ask the upstream (one call fleet-wide for concurrent callers) and store it |
/// | `no-store` / `{"no-store": true}` | don't store this answer (a fresh stored one is still served) |
/// | `max-age=N` / `{"s-maxage": N}` | accept only an answer at most N s old; `max-age=0` is `no-cache` |
/// | `max-stale=N` | accept a stale answer at most N s past its freshness (absent: the policy's stale window) |
/// | `min-fresh=N` | accept only an answer that stays fresh at least N s more |
/// | `stale-if-error=N` | if the upstream call fails, serve a stale answer at most N s past its freshness (absent: the policy's stale window; `0`: never) |
/// | `only-if-cached` | answer only from the cache (a fresh answer); 504 otherwise, without calling the upstream |
/// | `{"ttl": N}` | this answer stays fresh N s (instead of the proxy's `freshFor`) |
/// | `{"namespace": "x"}` | a sub-namespace inside the caller's own tenant namespace (`<tenant>.x`) |
///
/// `max-age` or `min-fresh` without `max-stale` also refuses stale answers (RFC 9111 §5.2.1): a
/// stale stored answer is then refreshed first, and served only as the fail-safe. Unknown
/// directives are ignored (as RFC 9111 asks); a malformed value is a 400.
public struct CacheDirectives: Sendable, Hashable {
    /// `no-cache`.
    public var noCache = false
    /// `no-store`.
    public var noStore = false
    /// `max-age` in seconds.
    public var maxAge: Int?
    /// `max-stale` in seconds.
    public var maxStale: Int?
    /// `min-fresh` in seconds.
    public var minFresh: Int?
    /// `stale-if-error` in seconds.
    public var staleIfError: Int?
    /// `only-if-cached`.
    public var onlyIfCached = false
    /// The body's `ttl` in seconds.
    public var ttl: Double?
    /// The body's `namespace`.
    public var subNamespace: String?

    /// No directives.
    public init() {}

    /// The largest number of seconds accepted (about 10 years).
    static let maximumSeconds = 315_360_000

    /// Reads a `Cache-Control` header value.
    /// - Throws: ``ProxyError`` 400 for a directive with a malformed value.
    public mutating func apply(cacheControl header: String) throws(ProxyError) {
        for part in header.split(separator: ",") {
            let directive = part.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
            guard let name = directive.first?.lowercased(), !name.isEmpty else { continue }
            let value = directive.count == 2 ? directive[1].trimmingCharacters(quotes: true) : nil
            func seconds() throws(ProxyError) -> Int {
                guard let value, let number = Int(value), (0...Self.maximumSeconds).contains(number) else {
                    throw ProxyError.badRequest("Cache-Control \(name) needs a number of seconds (0...\(Self.maximumSeconds)), got '\(value ?? "")'", param: "Cache-Control")
                }
                return number
            }
            switch name {
            case "no-cache": noCache = true
            case "no-store": noStore = true
            case "only-if-cached": onlyIfCached = true
            case "max-age": maxAge = try seconds()
            case "max-stale": maxStale = value == nil ? nil : try seconds()
            case "min-fresh": minFresh = try seconds()
            case "stale-if-error": staleIfError = try seconds()
            default: continue
            }
        }
    }

    /// Reads the body's `cache` object (LiteLLM's shape).
    /// - Throws: ``ProxyError`` 400 for a value of the wrong type.
    public mutating func apply(cacheObject value: JSONValue) throws(ProxyError) {
        guard case .object(let object) = value else {
            throw ProxyError.badRequest("'cache' must be an object such as {\"no-cache\": true}", param: "cache")
        }
        for (name, value) in object {
            switch (name, value) {
            case ("no-cache", .bool(let flag)): noCache = noCache || flag
            case ("no-store", .bool(let flag)): noStore = noStore || flag
            case ("ttl", _), ("s-maxage", _):
                guard let number = Self.number(value), number >= 0, number <= Double(Self.maximumSeconds) else {
                    throw ProxyError.badRequest("cache.\(name) must be a number of seconds (0...\(Self.maximumSeconds))", param: "cache.\(name)")
                }
                if name == "ttl" {
                    guard number > 0 else { throw ProxyError.badRequest("cache.ttl must be more than 0 seconds", param: "cache.ttl") }
                    ttl = number
                } else {
                    maxAge = Int(number)
                }
            case ("namespace", .string(let text)):
                guard !text.isEmpty, text.utf8.count <= 15, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                    throw ProxyError.badRequest("cache.namespace must be 1-15 characters of A-Z a-z 0-9 - _", param: "cache.namespace")
                }
                subNamespace = text
            case ("no-cache", _), ("no-store", _), ("namespace", _):
                throw ProxyError.badRequest("cache.\(name) has the wrong type", param: "cache.\(name)")
            default:
                continue
            }
        }
    }

    private static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .int(let number): return Double(number)
        case .double(let number) where number.isFinite: return number
        default: return nil
        }
    }

    /// Whether a request asks about the stored answer's age or remaining freshness.
    public var constrainsFreshness: Bool { (maxAge ?? 0) > 0 || (minFresh ?? 0) > 0 }

    /// The library options for a caller in `tenant`.
    public func options(for tenant: Tenant) -> LLMRequestOptions {
        var staleness = maxStale.map { Duration.seconds($0) }
        if staleness == nil, maxAge != nil || minFresh != nil { staleness = .zero }
        return LLMRequestOptions(
            namespace: subNamespace.map { "\(tenant.namespace).\($0)" } ?? tenant.namespace,
            noCache: noCache || maxAge == 0,
            noStore: noStore,
            ttl: ttl.map { .milliseconds(Int64(($0 * 1_000).rounded(.up))) },
            maxStale: staleness,
            staleIfError: staleIfError.map { .seconds($0) },
            upstreamAPIKey: tenant.upstreamAPIKey
        )
    }

    /// Whether `result` meets `max-age` and `min-fresh`. A fail-safe answer (served because the
    /// upstream failed, within `stale-if-error`) always does: RFC 9111 lets it through.
    public func accepts(_ result: LLMResult) -> Bool {
        if case .staleAfterFailure = result.source { return true }
        if let maxAge, maxAge > 0, result.age > .seconds(maxAge) { return false }
        if let minFresh, minFresh > 0, (result.remainingFreshness ?? .zero) < .seconds(minFresh) { return false }
        return true
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }

    fileprivate func trimmingCharacters(quotes: Bool) -> String {
        var text = self
        if quotes, text.count >= 2, text.first == "\"", text.last == "\"" { text = text.dropFirst().dropLast() }
        return String(text)
    }
}
