import Configuration
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
    /// `stampede serve` only: where it listens and its proxy configuration file.
    var serve: ServeSettings?

    /// The settings only `stampede serve` reads.
    struct ServeSettings {
        var host: Sourced<String>
        var port: Sourced<Int>
        var proxyConfig: Sourced<String?>
    }

    /// The `stampede serve` flags, layered like every other setting.
    struct ServeFlags {
        var host: String?
        var port: Int?
        var proxyConfig: String?
    }

    /// Resolves every setting through swift-configuration: a `ConfigReader` over the flags, the
    /// environment (swift-configuration's `EnvironmentVariablesProvider`, with our variable names)
    /// and the config file, in that order, with the defaults below; a ``ProvenanceRecorder`` (its
    /// access reporter) records which of them gave each value and any value it could not convert.
    /// The file is parsed here, strictly (`true` is not 1 s, 1.7 is not an integer), into an
    /// in-memory provider: swift-configuration's own JSON snapshot converts both.
    static func resolve(
        _ options: SettingsOptions, serve serveFlags: ServeFlags? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Settings {
        var fileName = "config file"
        var fileValues: [AbsoluteConfigKey: ConfigValue] = [:]
        if let path = options.config ?? environment["STAMPEDE_CONFIG"], !path.isEmpty {
            fileName = path
            fileValues = try Self.fileValues(path)
        }
        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        func flag(_ key: String, _ content: ConfigContent?, secret: Bool = false) {
            if let content { flagValues[AbsoluteConfigKey([key])] = ConfigValue(content, isSecret: secret) }
        }
        flag("redis_url", options.redisURL.map(ConfigContent.string), secret: true)
        flag("namespace", options.namespace.map(ConfigContent.string))
        for (key, value) in [("fresh_for", options.freshFor), ("stale_for", options.staleFor), ("compute_timeout", options.computeTimeout), ("lock_ttl", options.lockTTL), ("hot_window", options.hotWindow), ("hot_ttl", options.hotTTL), ("ttl_jitter", options.ttlJitter)] {
            flag(key, value.map(ConfigContent.double))
        }
        flag("hot_threshold", options.hotThreshold.map(ConfigContent.int))
        flag("prompt_version", options.promptVersion.map(ConfigContent.string))
        flag("base_url", options.baseURL.map(ConfigContent.string))
        flag("api_key", options.apiKey.map(ConfigContent.string), secret: true)
        flag("host", serveFlags?.host.map(ConfigContent.string))
        flag("port", serveFlags?.port.map(ConfigContent.int))
        flag("proxy_config", serveFlags?.proxyConfig.map(ConfigContent.string))
        // Our variable names (REDIS_URL, STAMPEDE_FRESH_FOR, OPENAI_BASE_URL, …) for the setting keys.
        let variables = Self.environmentNames
        let environmentProvider = KeyMappingProvider(
            upstream: EnvironmentVariablesProvider(
                environmentVariables: environment.filter { !$0.value.isEmpty },
                secretsSpecifier: .specific(["REDIS_URL", "OPENAI_API_KEY"])
            ),
            keyMapper: { key in AbsoluteConfigKey([variables[key.components.joined(separator: ".")] ?? "STAMPEDE_UNMAPPED_\(key.components.joined(separator: "_"))"]) }
        )
        let recorder = ProvenanceRecorder(fileName: fileName, variables: variables)
        let reader = ConfigReader(
            providers: [InMemoryProvider(name: "flag", values: flagValues), environmentProvider, InMemoryProvider(name: fileName, values: fileValues)],
            accessReporter: recorder
        )
        /// The value and where it came from; a value a provider had but could not give as `T` is
        /// refused, naming the flag, variable or file entry.
        func sourced<T>(_ key: String, default fallback: T, _ read: (ConfigKey) -> T?, check: (T, String) throws -> T = { value, _ in value }) throws -> Sourced<T> {
            let value = read(ConfigKey(key))
            let provenance = recorder.provenance(of: key)
            if let failure = provenance.failure { throw ValidationError(failure) }
            guard let value, let origin = provenance.origin else { return Sourced(value: fallback, source: "default") }
            return Sourced(value: try check(value, origin.name(key: key, fileName: fileName)), source: origin.source(fileName: fileName))
        }
        let seconds = { (key: String, fallback: Double) throws -> Sourced<Double> in
            try sourced(key, default: fallback, { reader.double(forKey: $0) }, check: { try NumericInput.number($0, $1, in: 0...NumericInput.maximumSeconds) })
        }
        let text = { (key: String, fallback: String) throws -> Sourced<String> in try sourced(key, default: fallback, { reader.string(forKey: $0) }) }
        let redis = try sourced("redis_url", default: "", { reader.string(forKey: $0, isSecret: true) })
        let key = try sourced("api_key", default: "", { reader.string(forKey: $0, isSecret: true) })
        var serve: ServeSettings?
        if serveFlags != nil {
            let proxyConfig = try text("proxy_config", "")
            serve = ServeSettings(
                host: try text("host", "127.0.0.1"),
                port: try sourced("port", default: 8080, { reader.int(forKey: $0) }, check: { try NumericInput.integer($0, $1, in: 0...65_535) }),
                proxyConfig: Sourced(value: proxyConfig.value.isEmpty ? nil : proxyConfig.value, source: proxyConfig.source)
            )
        }
        return Settings(
            redisURL: Sourced(value: try options.tls.apply(to: redis.value.isEmpty ? nil : redis.value), source: redis.source),
            namespace: try text("namespace", "llm"),
            freshFor: try seconds("fresh_for", 3600),
            staleFor: try seconds("stale_for", 86_400),
            computeTimeout: try seconds("compute_timeout", 60),
            lockTTL: try seconds("lock_ttl", 90),
            hotThreshold: try sourced("hot_threshold", default: 10, { reader.int(forKey: $0) }, check: { try NumericInput.integer($0, $1, in: 1...1_000_000_000_000_000) }),
            hotWindow: try seconds("hot_window", 3600),
            hotTTL: try seconds("hot_ttl", 21_600),
            ttlJitter: try sourced("ttl_jitter", default: 0.1, { reader.double(forKey: $0) }, check: { try NumericInput.number($0, $1, in: 0...0.5) }),
            promptVersion: try text("prompt_version", "v1"),
            baseURL: try text("base_url", "https://api.openai.com/v1"),
            apiKey: Sourced(value: key.value.isEmpty ? nil : key.value, source: key.source),
            model: try text("model", "gpt-4o-mini"),
            serve: serve
        )
    }

    /// The environment variable of each setting.
    static let environmentNames: [String: String] = [
        "redis_url": "REDIS_URL", "namespace": "STAMPEDE_NAMESPACE", "fresh_for": "STAMPEDE_FRESH_FOR", "stale_for": "STAMPEDE_STALE_FOR",
        "compute_timeout": "STAMPEDE_COMPUTE_TIMEOUT", "lock_ttl": "STAMPEDE_LOCK_TTL", "hot_threshold": "STAMPEDE_HOT_THRESHOLD",
        "hot_window": "STAMPEDE_HOT_WINDOW", "hot_ttl": "STAMPEDE_HOT_TTL", "ttl_jitter": "STAMPEDE_TTL_JITTER",
        "prompt_version": "STAMPEDE_PROMPT_VERSION", "base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY", "model": "STAMPEDE_MODEL",
        "host": "STAMPEDE_HOST", "port": "STAMPEDE_PORT", "proxy_config": "STAMPEDE_PROXY_CONFIG",
    ]

    /// The config file's settings, typed strictly: numbers must be JSON numbers (not `true`),
    /// integers whole, strings strings; unknown settings and an API key are refused by name.
    static func fileValues(_ path: String) throws -> [AbsoluteConfigKey: ConfigValue] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the config file \(path): it does not exist or is not readable")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("the config file \(path) is not a JSON object")
        }
        let strings: Set<String> = ["redis_url", "namespace", "prompt_version", "base_url", "model", "host", "proxy_config"]
        let seconds: Set<String> = ["fresh_for", "stale_for", "compute_timeout", "lock_ttl", "hot_window", "hot_ttl", "ttl_jitter"]
        let known = strings.union(seconds).union(["hot_threshold", "port"])
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, raw) in object {
            let name = "'\(key)' in \(path)"
            let content: ConfigContent
            if key == "api_key" {
                throw ValidationError("\(name): put the API key in OPENAI_API_KEY, not in a file")
            } else if strings.contains(key) {
                guard let text = raw as? String else { throw ValidationError("\(name) must be a string") }
                content = .string(text)
            } else if seconds.contains(key) {
                content = .double(try NumericInput.jsonNumber(raw, name))
            } else if key == "hot_threshold" || key == "port" {
                content = .int(try NumericInput.jsonInteger(raw, name))
            } else {
                throw ValidationError("the config file \(path) has an unknown setting '\(key)'; known: \(known.sorted().joined(separator: ", "))")
            }
            values[AbsoluteConfigKey([key])] = ConfigValue(content, isSecret: key == "redis_url")
        }
        return values
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
        ] + (serve.map { serve in
            [
                ("host", serve.host.value, serve.host.source),
                ("port", String(serve.port.value), serve.port.source),
                ("proxy_config", serve.proxyConfig.value ?? "(none)", serve.proxyConfig.source),
            ]
        } ?? [])
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
