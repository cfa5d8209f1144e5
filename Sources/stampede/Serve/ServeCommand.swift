import ArgumentParser
import Foundation
import Hummingbird
import LLMCache
import Logging
import Metrics
import NIOCore
import OTel
import Prometheus
import RedisClient
import SimulatedLLM
import ServiceLifecycle
import StampedeProxy

/// `stampede serve`: the OpenAI-compatible caching proxy.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the OpenAI-compatible caching proxy: point any OpenAI client's base_url at it (POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, /healthz, /readyz, /metrics).",
        subcommands: [HashKeyCommand.self]
    )

    @Option(help: "The proxy configuration (JSON: upstreams, tenants with hashed virtual keys, max_body_bytes). [env: STAMPEDE_PROXY_CONFIG]")
    var proxyConfig: String?
    @Option(help: "Address to listen on. [env: STAMPEDE_HOST] (default: 127.0.0.1)")
    var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (the chosen port is printed). [env: STAMPEDE_PORT] (default: 8080)")
    var port: Int?
    @Flag(help: "Try it without an API key: a simulated OpenAI upstream in this process and one tenant whose virtual key is sk-demo (no --proxy-config needed).")
    var demo = false
    @Flag(help: "Resolve every setting (flag > environment > config file > default), show where each came from, load and check the proxy configuration, then exit (non-zero on problems).")
    var check = false
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        let resolved = try Settings.resolve(settings, serve: Settings.ServeFlags(host: host, port: port, proxyConfig: proxyConfig))
        guard let serveSettings = resolved.serve else { throw ValidationError("the serve settings were not resolved") }
        if check { return try Self.check(resolved, serve: serveSettings, environment: environment) }
        let proxy: ProxyConfiguration
        var simulated: SimulatedLLMServer?
        if demo {
            let upstream = try await SimulatedLLMServer.start(.init(latency: .fixed(.milliseconds(800)), streamChunks: 8), apiKey: "demo-upstream-key")
            simulated = upstream
            environment["STAMPEDE_DEMO_UPSTREAM_KEY"] = "demo-upstream-key"
            proxy = ProxyConfiguration(
                upstreams: [UpstreamProfile(name: "simulated", baseURL: upstream.baseURL, apiKeyEnvironment: "STAMPEDE_DEMO_UPSTREAM_KEY")],
                tenants: [TenantConfiguration(name: "demo", namespace: "demo", keySHA256: VirtualKey.sha256Hex("sk-demo"), upstream: "simulated")],
                // gpt-4o-mini's list price (USD per 1M tokens), also for the simulated model the demo
                // clients ask for, so the demo's hits count as money saved.
                prices: ["gpt-4o-mini": ModelPrice(inputPerMillion: 0.15, outputPerMillion: 0.60), "sim-model": ModelPrice(inputPerMillion: 0.15, outputPerMillion: 0.60)]
            )
            Console.note("Demo mode: a simulated OpenAI upstream (800 ms per answer) at \(upstream.baseURL); use the virtual key sk-demo.")
        } else {
            guard let path = serveSettings.proxyConfig.value else {
                throw ValidationError("--proxy-config (or STAMPEDE_PROXY_CONFIG) must name the proxy configuration file (or try --demo)")
            }
            proxy = try ProxyConfiguration.load(path: path)
        }
        defer { if let simulated { Task { await simulated.stop() } } }
        let host = serveSettings.host.value
        let port = serveSettings.port.value
        let problems = resolved.problems()
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ")) }

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // Per-request loggers carry metadata (Hummingbird's request id) that is rendered only when
        // a line is written.
        var logger = Logger(label: "stampede.serve") { label in DeferredMetadataLogHandler(wrapping: StreamLogHandler.standardError(label: label)) }
        logger.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info

        try await RedisTarget.with(explicitURL: resolved.redisURL.value, tls: settings.tls) { url in
            let redis = try RedisClient(url: url, clientName: "stampede-serve", logger: logger)
            var caches: [String: LLMCache] = [:]
            var embeddings: [String: OpenAIEmbeddingsClient] = [:]
            for upstream in proxy.upstreams {
                let key = upstream.apiKeyEnvironment.flatMap { environment[$0] }
                if let variable = upstream.apiKeyEnvironment, key == nil {
                    logger.warning("the upstream's API key variable is not set; its requests will fail until it is", metadata: ["upstream": "\(upstream.name)", "variable": "\(variable)"])
                }
                let client = OpenAIClient(configuration: OpenAIConfiguration(baseURL: upstream.baseURL, apiKey: key, maxRetries: upstream.maxRetries ?? 3), logger: logger)
                embeddings[upstream.name] = OpenAIEmbeddingsClient(configuration: EmbeddingsConfiguration(
                    baseURL: upstream.baseURL, apiKey: key, maxRetries: upstream.maxRetries ?? 3
                ), logger: logger)
                var configuration = LLMCacheConfiguration(
                    namespace: proxy.tenants.first?.namespace ?? "pass-through", policy: resolved.policy,
                    keyOptions: RequestKeyOptions(promptVersion: resolved.promptVersion.value), prices: proxy.priceTable
                )
                // One label for every pass-through key's namespace: metric series stay bounded.
                configuration.metricsNamespaceLabels = [PassThroughConfiguration.namespacePrefix: "pass-through"]
                configuration.nearCache = try proxy.nearCache?.configuration()
                configuration.policy.commitInBackground = proxy.commitInBackground
                caches[upstream.name] = try LLMCache(redis: redis, upstream: client, configuration: configuration, logger: logger)
            }
            let context = ProxyContext(
                redis: redis, caches: caches, upstreams: proxy.upstreams, tenants: try TenantDirectory(proxy.tenants, passThrough: proxy.passThrough, secret: proxy.passThrough.flatMap { environment[$0.hmacSecretEnvironment] }),
                maxBodyBytes: proxy.maxBodyBytes, environment: environment, metricsText: { registry.emitToString() }, embeddings: embeddings
            )
            var services: [any Service] = [redis] + caches.keys.sorted().compactMap { caches[$0] }
            let tracing = try Self.tracing(environment: environment, logger: logger)
            if let tracing { services.append(tracing) }
            let app = Application(
                router: ProxyRouter.build(context, logger: logger, tracing: tracing != nil),
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "stampede"),
                services: services,
                onServerRunning: { channel in
                    let bound = channel.localAddress?.port ?? port
                    let line = "stampede serve: listening on http://\(host):\(bound) (\(proxy.tenants.count) tenants, \(proxy.upstreams.count) upstreams)\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                },
                logger: logger
            )
            try await app.runService()
        }
    }
}

extension ServeCommand {
    /// `stampede serve --check`: the settings with their sources, then the proxy configuration's
    /// upstreams (whether each key variable is set) and tenants; throws when anything is wrong.
    static func check(_ resolved: Settings, serve: Settings.ServeSettings, environment: [String: String]) throws {
        for (name, value, source) in resolved.rows {
            print(name.padding(toLength: 17, withPad: " ", startingAt: 0) + value.padding(toLength: 46, withPad: " ", startingAt: 0) + " (\(source))")
        }
        var problems = resolved.problems()
        if let path = serve.proxyConfig.value {
            do {
                let proxy = try ProxyConfiguration.load(path: path)
                for upstream in proxy.upstreams {
                    let key = upstream.apiKeyEnvironment.map { environment[$0] == nil ? "\($0) NOT SET" : "\($0) set" } ?? "no key"
                    print("upstream '\(upstream.name)': \(upstream.baseURL) (\(key))")
                    if let variable = upstream.apiKeyEnvironment, environment[variable] == nil { problems.append("upstream '\(upstream.name)': \(variable) is not set") }
                }
                print("tenants: \(proxy.tenants.map(\.name).joined(separator: ", "))" + (proxy.passThrough == nil ? "" : "; pass-through to '\(proxy.passThrough!.upstream)'"))
                let near = proxy.nearCache.map { "on (\($0.maxEntries) entries, \($0.maxBytes) bytes)" } ?? "off"
                print("near_cache \(near), commit_in_background \(proxy.commitInBackground ? "on" : "off")")
                do {
                    _ = try TenantDirectory(proxy.tenants, passThrough: proxy.passThrough, secret: proxy.passThrough.flatMap { environment[$0.hmacSecretEnvironment] })
                } catch { problems.append(error.message) }
            } catch let error as ProxyConfigurationError {
                problems.append(error.message)
            }
        } else {
            problems.append("proxy_config: name the proxy configuration file (--proxy-config or STAMPEDE_PROXY_CONFIG), or run with --demo")
        }
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "\n")) }
        print("ok: the settings are valid")
    }

    /// Trace export by OTLP/HTTP (swift-otel), when the standard OpenTelemetry variables ask for it:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (e.g.
    /// `http://collector:4318`), or `OTEL_TRACES_EXPORTER=otlp`; `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// (`http/protobuf`, the default, or `http/json`), `OTEL_SERVICE_NAME` (default
    /// `stampede-serve`) and the other `OTEL_*` settings apply. Only traces: metrics stay on
    /// `/metrics`, logs on standard error. `nil` when nothing asks for it.
    static func tracing(environment: [String: String], logger: Logger) throws -> (any Service)? {
        let asked = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].contains { !(environment[$0] ?? "").isEmpty }
            || (environment["OTEL_TRACES_EXPORTER"].map { $0 != "none" && !$0.isEmpty } ?? false)
        guard asked else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = environment["OTEL_SERVICE_NAME"] ?? "stampede-serve"
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        var otelEnvironment = environment
        otelEnvironment["OTEL_METRICS_EXPORTER"] = "none"
        otelEnvironment["OTEL_LOGS_EXPORTER"] = "none"
        let service = try OTel.bootstrap(configuration: configuration, environment: otelEnvironment)
        logger.info("exporting traces by OTLP/HTTP", metadata: ["service": "\(configuration.serviceName)"])
        return service
    }
}

/// `stampede serve hash-key`: the SHA-256 to put in a tenant's `key_sha256`, for a virtual key read
/// from standard input (never from the command line, where it would show in `ps`).
struct HashKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Print the key_sha256 of a virtual API key read from standard input (one line)."
    )

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw ValidationError("pipe the virtual key on standard input, e.g.  printf %s \"$KEY\" | stampede serve hash-key")
        }
        print(VirtualKey.sha256Hex(line))
    }
}
