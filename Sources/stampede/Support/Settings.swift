import ArgumentParser
import Foundation
import LLMCache
import RedisClient
import StampedeCache

/// Options shared by `ask`, `stats`, `invalidate` and `config check`. Each setting comes from the
/// flag, else the environment, else the config file (`--config` or `STAMPEDE_CONFIG`, JSON), else
/// its default; `stampede config check` shows which.
struct SettingsOptions: ParsableArguments {
    @OptionGroup(title: "TLS (rediss:// URLs)") var tls: TLSOptions
    @Option(help: "JSON config file with any of: redis_url, namespace, fresh_for, stale_for, compute_timeout, lock_ttl, hot_threshold, hot_window, hot_ttl, ttl_jitter, prompt_version, base_url, model. [env: STAMPEDE_CONFIG]")
    var config: String?
    @Option(name: .customLong("redis-url"), help: "Redis URL. [env: REDIS_URL] (default: a private redis-server for this run, which keeps nothing)")
    var redisURL: String?
    @Option(help: "Cache namespace (tenant). [env: STAMPEDE_NAMESPACE] (default: llm)")
    var namespace: String?
    @Option(name: .customLong("fresh-for"), help: "Seconds an answer is fresh. [env: STAMPEDE_FRESH_FOR] (default: 3600)")
    var freshFor: Double?
    @Option(name: .customLong("stale-for"), help: "Seconds an answer may be served stale while it is refreshed. [env: STAMPEDE_STALE_FOR] (default: 86400)")
    var staleFor: Double?
    @Option(name: .customLong("compute-timeout"), help: "Seconds an LLM call (with retries) may take. [env: STAMPEDE_COMPUTE_TIMEOUT] (default: 60)")
    var computeTimeout: Double?
    @Option(name: .customLong("lock-ttl"), help: "Seconds a compute lock lives; must exceed compute-timeout by max(1 s, 10%). [env: STAMPEDE_LOCK_TTL] (default: 90)")
    var lockTTL: Double?
    @Option(name: .customLong("hot-threshold"), help: "Hits within hot-window that make a key hot. [env: STAMPEDE_HOT_THRESHOLD] (default: 10)")
    var hotThreshold: Int?
    @Option(name: .customLong("hot-window"), help: "Seconds of the hot-key sliding window. [env: STAMPEDE_HOT_WINDOW] (default: 3600)")
    var hotWindow: Double?
    @Option(name: .customLong("hot-ttl"), help: "Seconds a hot key's retention is pushed ahead on each hit. [env: STAMPEDE_HOT_TTL] (default: 21600)")
    var hotTTL: Double?
    @Option(name: .customLong("ttl-jitter"), help: "Fraction (0-0.5) by which freshness is randomly shortened. [env: STAMPEDE_TTL_JITTER] (default: 0.1)")
    var ttlJitter: Double?
    @Option(name: .customLong("prompt-version"), help: "Prompt-template version in every key; bump it to retire old answers. [env: STAMPEDE_PROMPT_VERSION] (default: v1)")
    var promptVersion: String?
    @Option(name: .customLong("base-url"), help: "OpenAI-compatible API root. [env: OPENAI_BASE_URL] (default: https://api.openai.com/v1)")
    var baseURL: String?
    @Option(name: .customLong("api-key"), help: "API key. [env: OPENAI_API_KEY]")
    var apiKey: String?
}

/// A setting's value and where it came from.
struct Sourced<Value> {
    var value: Value
    var source: String
}

/// The resolved settings.
struct Settings {
    var redisURL: Sourced<String?>
    var namespace: Sourced<String>
    var freshFor: Sourced<Double>
    var staleFor: Sourced<Double>
    var computeTimeout: Sourced<Double>
    var lockTTL: Sourced<Double>
    var hotThreshold: Sourced<Int>
    var hotWindow: Sourced<Double>
    var hotTTL: Sourced<Double>
    var ttlJitter: Sourced<Double>
    var promptVersion: Sourced<String>
    var baseURL: Sourced<String>
    var apiKey: Sourced<String?>
    var model: Sourced<String>

    static func resolve(_ options: SettingsOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Settings {
        var file: [String: Any] = [:]
        var fileName = "config file"
        if let path = options.config ?? environment["STAMPEDE_CONFIG"], !path.isEmpty {
            fileName = path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the config file \(path): it does not exist or is not readable")
            }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ValidationError("the config file \(path) is not a JSON object")
            }
            let known: Set<String> = ["redis_url", "namespace", "fresh_for", "stale_for", "compute_timeout", "lock_ttl", "hot_threshold", "hot_window", "hot_ttl", "ttl_jitter", "prompt_version", "base_url", "model"]
            if let unknown = object.keys.first(where: { !known.contains($0) }) {
                throw ValidationError("the config file \(path) has an unknown setting '\(unknown)'; known: \(known.sorted().joined(separator: ", "))")
            }
            file = object
        }
        /// The flag, else the environment, else the file, else the default; `check` validates the
        /// value whichever source it came from (its message names that source).
        func pick<T>(
            _ flag: T?, _ env: String, _ key: String, _ parse: (String, String) throws -> T, _ fromFile: (Any, String) throws -> T,
            default value: T, check: (T, String) throws -> T = { value, _ in value }
        ) throws -> Sourced<T> {
            if let flag { return Sourced(value: try check(flag, "--\(key.replacingOccurrences(of: "_", with: "-"))"), source: "flag") }
            if let text = environment[env], !text.isEmpty {
                let name = "\(env)"
                return Sourced(value: try check(try parse(text, name), name), source: "env \(env)")
            }
            if let raw = file[key] {
                let name = "'\(key)' in \(fileName)"
                return Sourced(value: try check(try fromFile(raw, name), name), source: fileName)
            }
            return Sourced(value: value, source: "default")
        }
        let string: (String, String) -> String = { text, _ in text }
        let fileString: (Any, String) throws -> String = { raw, name in
            guard let text = raw as? String else { throw ValidationError("\(name) must be a string") }
            return text
        }
        // Seconds: finite, 0 ... 10 years (the policy then says which must be positive).
        let secondsText: (String, String) throws -> Double = { try NumericInput.number($0, $1, in: 0...NumericInput.maximumSeconds) }
        let secondsFile: (Any, String) throws -> Double = { try NumericInput.number(try NumericInput.jsonNumber($0, $1), $1, in: 0...NumericInput.maximumSeconds) }
        let secondsCheck: (Double, String) throws -> Double = { try NumericInput.number($0, $1, in: 0...NumericInput.maximumSeconds) }
        let seconds = { (flag: Double?, env: String, key: String, value: Double) throws -> Sourced<Double> in
            try pick(flag, env, key, secondsText, secondsFile, default: value, check: secondsCheck)
        }
        let redis = try pick(options.redisURL, "REDIS_URL", "redis_url", string, fileString, default: "")
        let key = try pick(options.apiKey, "OPENAI_API_KEY", "-", string, { _, name in throw ValidationError("\(name): put the API key in OPENAI_API_KEY, not in a file") }, default: "")
        return Settings(
            redisURL: Sourced(value: try options.tls.apply(to: redis.value.isEmpty ? nil : redis.value), source: redis.source),
            namespace: try pick(options.namespace, "STAMPEDE_NAMESPACE", "namespace", string, fileString, default: "llm"),
            freshFor: try seconds(options.freshFor, "STAMPEDE_FRESH_FOR", "fresh_for", 3600),
            staleFor: try seconds(options.staleFor, "STAMPEDE_STALE_FOR", "stale_for", 86_400),
            computeTimeout: try seconds(options.computeTimeout, "STAMPEDE_COMPUTE_TIMEOUT", "compute_timeout", 60),
            lockTTL: try seconds(options.lockTTL, "STAMPEDE_LOCK_TTL", "lock_ttl", 90),
            hotThreshold: try pick(
                options.hotThreshold, "STAMPEDE_HOT_THRESHOLD", "hot_threshold",
                { try NumericInput.integer($0, $1, in: 1...1_000_000_000_000_000) }, NumericInput.jsonInteger, default: 10,
                check: { try NumericInput.integer($0, $1, in: 1...1_000_000_000_000_000) }
            ),
            hotWindow: try seconds(options.hotWindow, "STAMPEDE_HOT_WINDOW", "hot_window", 3600),
            hotTTL: try seconds(options.hotTTL, "STAMPEDE_HOT_TTL", "hot_ttl", 21_600),
            ttlJitter: try pick(
                options.ttlJitter, "STAMPEDE_TTL_JITTER", "ttl_jitter",
                { try NumericInput.number($0, $1, in: 0...0.5) }, { try NumericInput.number(try NumericInput.jsonNumber($0, $1), $1, in: 0...0.5) },
                default: 0.1, check: { try NumericInput.number($0, $1, in: 0...0.5) }
            ),
            promptVersion: try pick(options.promptVersion, "STAMPEDE_PROMPT_VERSION", "prompt_version", string, fileString, default: "v1"),
            baseURL: try pick(options.baseURL, "OPENAI_BASE_URL", "base_url", string, fileString, default: "https://api.openai.com/v1"),
            apiKey: Sourced(value: key.value.isEmpty ? nil : key.value, source: key.source),
            model: try pick(nil as String?, "STAMPEDE_MODEL", "model", string, fileString, default: "gpt-4o-mini")
        )
    }

    var policy: CachePolicy {
        CachePolicy(
            freshFor: .seconds(freshFor.value), staleFor: .seconds(staleFor.value),
            computeTimeout: .seconds(computeTimeout.value), lockTTL: .seconds(lockTTL.value),
            hot: .init(threshold: hotThreshold.value, window: .seconds(hotWindow.value), ttl: .seconds(hotTTL.value)),
            ttlJitter: ttlJitter.value
        )
    }

    /// Every problem, each with what to do; empty when the settings can work.
    func problems() -> [String] {
        var problems: [String] = []
        if let url = redisURL.value {
            do { _ = try RedisConfiguration(url: url) } catch { problems.append("redis_url (\(redisURL.source)): \(error.message)") }
        }
        do { try policy.validate() } catch { problems.append("\(error.setting) (\(sourceOf(error.setting))): \(error.problem)") }
        do { _ = try KeySpaceCheck.namespace(namespace.value) } catch { problems.append("namespace (\(namespace.source)): \(error)") }
        if URL(string: baseURL.value)?.scheme.map({ $0 == "http" || $0 == "https" }) != true {
            problems.append("base_url (\(baseURL.source)): '\(RedisConfiguration.redacted(baseURL.value))' is not an http(s) URL")
        }
        if promptVersion.value.isEmpty { problems.append("prompt_version (\(promptVersion.source)): must not be empty") }
        return problems
    }

    private func sourceOf(_ setting: String) -> String {
        switch setting {
        case "freshFor": return freshFor.source
        case "staleFor": return staleFor.source
        case "computeTimeout": return computeTimeout.source
        case "lockTTL": return lockTTL.source
        case "hot.threshold": return hotThreshold.source
        case "hot.window": return hotWindow.source
        case "hot.ttl": return hotTTL.source
        case "ttlJitter": return ttlJitter.source
        default: return "setting"
        }
    }

    var rows: [(String, String, String)] {
        [
            ("redis_url", redisURL.value.map(RedisConfiguration.redacted) ?? "(none: a private redis-server per run)", redisURL.source),
            ("namespace", namespace.value, namespace.source),
            ("fresh_for", "\(freshFor.value) s", freshFor.source),
            ("stale_for", "\(staleFor.value) s", staleFor.source),
            ("compute_timeout", "\(computeTimeout.value) s", computeTimeout.source),
            ("lock_ttl", "\(lockTTL.value) s", lockTTL.source),
            ("hot_threshold", "\(hotThreshold.value) hits", hotThreshold.source),
            ("hot_window", "\(hotWindow.value) s", hotWindow.source),
            ("hot_ttl", "\(hotTTL.value) s", hotTTL.source),
            ("ttl_jitter", "\(ttlJitter.value)", ttlJitter.source),
            ("prompt_version", promptVersion.value, promptVersion.source),
            ("base_url", RedisConfiguration.redacted(baseURL.value), baseURL.source),
            ("api_key", apiKey.value == nil ? "(not set)" : "(set)", apiKey.source),
            ("model", model.value, model.source),
        ]
    }
}

/// Namespace rules, as StampedeCache applies them, checked without creating a cache.
enum KeySpaceCheck {
    static func namespace(_ name: String) throws -> String {
        guard !name.isEmpty, name.utf8.count <= 64,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { throw ValidationError("'\(name)' must be 1-64 characters of A-Z a-z 0-9 - _ .") }
        return name
    }
}
