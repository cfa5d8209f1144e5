@testable import RedisClient
import Testing

@Suite("TLS settings: rediss:// URLs, query parameters and the REDIS_TLS_* environment")
struct TLSConfigurationTests {
    @Test("rediss:// turns TLS on with full verification against the system trust roots")
    func redissDefaults() throws {
        let configuration = try RedisConfiguration(url: "rediss://cache.example.com:6380", environment: [:])
        #expect(configuration.endpoint == .tcp(host: "cache.example.com", port: 6380))
        #expect(configuration.tls == RedisTLSConfiguration())
        #expect(configuration.tls?.verification == .full)
        #expect(try RedisConfiguration(url: "redis://cache.example.com", environment: [:]).tls == nil)
    }

    @Test("every TLS field can be given in the URL query")
    func queryParameters() throws {
        let url = "rediss://u:p@10.0.0.5:6380/2?tls_ca_file=/etc/ca.pem&tls_cert_file=/etc/w.pem&tls_key_file=/etc/w.key&tls_server_name=redis.internal&tls_insecure_skip_verify=true"
        let configuration = try RedisConfiguration(url: url, environment: [:])
        #expect(configuration.tls == RedisTLSConfiguration(
            caFile: "/etc/ca.pem", certificateFile: "/etc/w.pem", privateKeyFile: "/etc/w.key",
            serverName: "redis.internal", verification: .insecureSkipVerification
        ))
        #expect(configuration.database == 2 && configuration.username == "u" && configuration.password == "p")
    }

    @Test("the REDIS_TLS_* variables fill what the URL leaves out; the URL wins where both are given")
    func environmentFallback() throws {
        let environment = [
            "REDIS_TLS_CA_FILE": "/env/ca.pem", "REDIS_TLS_CERT_FILE": "/env/c.pem", "REDIS_TLS_KEY_FILE": "/env/c.key",
            "REDIS_TLS_SERVER_NAME": "env.internal", "REDIS_TLS_INSECURE_SKIP_VERIFY": "1",
        ]
        let configuration = try RedisConfiguration(url: "rediss://h?tls_ca_file=/url/ca.pem", environment: environment)
        #expect(configuration.tls?.caFile == "/url/ca.pem")
        #expect(configuration.tls?.certificateFile == "/env/c.pem")
        #expect(configuration.tls?.privateKeyFile == "/env/c.key")
        #expect(configuration.tls?.serverName == "env.internal")
        #expect(configuration.tls?.verification == .insecureSkipVerification)
        // A plaintext URL ignores them.
        #expect(try RedisConfiguration(url: "redis://h", environment: environment).tls == nil)
    }

    @Test("a bad REDIS_TLS_* value is refused naming the variable")
    func badEnvironmentValue() {
        do {
            _ = try RedisConfiguration(url: "rediss://h", environment: ["REDIS_TLS_INSECURE_SKIP_VERIFY": "sometimes"])
            Issue.record("expected a refusal")
        } catch {
            #expect(error.code == .configuration)
            #expect(error.message.contains("REDIS_TLS_INSECURE_SKIP_VERIFY"), "\(error.message)")
        }
    }

    @Test("an IP host verifies against IP SANs (no SNI); a DNS host or tls_server_name is the expected name")
    func expectedServerName() throws {
        let tls = RedisTLSConfiguration()
        #expect(RedisConnection.serverName(.tcp(host: "127.0.0.1", port: 1), tls: tls) == nil)
        #expect(RedisConnection.serverName(.tcp(host: "::1", port: 1), tls: tls) == nil)
        #expect(RedisConnection.serverName(.tcp(host: "redis.internal", port: 1), tls: tls) == "redis.internal")
        #expect(RedisConnection.serverName(.tcp(host: "127.0.0.1", port: 1), tls: RedisTLSConfiguration(serverName: "localhost")) == "localhost")
    }
}
