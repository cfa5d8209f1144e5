@testable import RedisClient
import Testing

@Suite("Redis URLs and configuration")
struct ConfigurationTests {
    @Test("a plain redis URL gives host, default port 6379 and database 0")
    func plainURL() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal")
        #expect(configuration.endpoint == .tcp(host: "cache.internal", port: 6379))
        #expect(configuration.database == 0)
        #expect(configuration.password == nil)
        #expect(configuration.username == nil)
    }

    @Test("user, password, port and database are all read")
    func fullURL() throws {
        let configuration = try RedisConfiguration(url: "redis://worker:s%40cret%3A1@10.0.0.5:6380/3")
        #expect(configuration.endpoint == .tcp(host: "10.0.0.5", port: 6380))
        #expect(configuration.username == "worker")
        #expect(configuration.password == "s@cret:1")
        #expect(configuration.database == 3)
    }

    @Test("a password alone: redis://:pw@host and redis://pw@host")
    func passwordOnly() throws {
        #expect(try RedisConfiguration(url: "redis://:pw@h").password == "pw")
        #expect(try RedisConfiguration(url: "redis://:pw@h").username == nil)
        #expect(try RedisConfiguration(url: "redis://pw@h").password == "pw")
    }

    @Test("IPv6 hosts in brackets")
    func ipv6() throws {
        #expect(try RedisConfiguration(url: "redis://[::1]:7000").endpoint == .tcp(host: "::1", port: 7000))
        #expect(try RedisConfiguration(url: "redis://[::1]").endpoint == .tcp(host: "::1", port: 6379))
    }

    @Test("unix socket URL with db, password and client name in the query")
    func unixURL() throws {
        let configuration = try RedisConfiguration(url: "unix:///var/run/redis/redis.sock?db=2&password=pw&name=worker-1")
        #expect(configuration.endpoint == .unixSocket(path: "/var/run/redis/redis.sock"))
        #expect(configuration.database == 2)
        #expect(configuration.password == "pw")
        #expect(configuration.clientName == "worker-1")
    }

    @Test("malformed URLs throw a configuration error naming the bad part", arguments: [
        ("localhost:6379", "missing scheme"),
        ("http://localhost", "unsupported scheme 'http'"),
        ("rediss://localhost?tls_cert_file=/c.pem", "needs both a client certificate and its private key"),
        ("rediss://localhost?tls_insecure_skip_verify=maybe", "must be true or false"),
        ("redis://localhost?tls_ca_file=/ca.pem", "tls_ca_file needs a rediss:// URL"),
        ("unix:///tmp/r.sock?tls_ca_file=/ca.pem", "needs a rediss:// URL"),
        ("redis://", "host is missing"),
        ("redis://host:notaport", "port 'notaport'"),
        ("redis://host:70000", "port '70000'"),
        ("redis://host:0", "port '0'"),
        ("redis://host/abc", "the database (after '/') is not a non-negative integer"),
        ("redis://host/-1", "the database (after '/') is not a non-negative integer"),
        ("redis://[::1:6379", "closing ']'"),
        ("redis://:@host", "password is empty"),
        ("redis://u:p%zz@host", "percent-encoding"),
        ("unix://relative/path", "must be absolute"),
        ("unix:///tmp/r.sock?db=x", "db is not a non-negative integer"),
        ("unix:///tmp/r.sock?timeout=3", "an unknown query parameter was given; supported: db, user, password, name"),
        ("redis://host?name=has space", "no spaces"),
    ])
    func malformedURLs(url: String, expected: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("expected '\(url)' to be rejected")
        } catch {
            #expect(error.code == .configuration)
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test("passwords never appear in error messages")
    func redactsPasswords() {
        do {
            _ = try RedisConfiguration(url: "redis://user:hunter2@host:bad")
            Issue.record("expected rejection")
        } catch {
            #expect(!error.message.contains("hunter2"))
            #expect(error.message.contains("user:***@host"))
        }
        #expect(RedisConfiguration.redacted("unix:///s?password=hunter2&db=1") == "unix:///s?password=***&db=1")
    }

    @Test("no part of a password leaks: '?' inside it, PASSWORD= in upper case, a second password=, http credentials")
    func redactsEveryForm() {
        for url in ["redis://:hunt?er2@host:6379", "redis://:hunt?x=er2@host", "redis://:hu&nt?er2@host/abc", "unix:///s?db=zz&PASSWORD=hunter2", "unix:///s?password=a&password=hunter2&db=q"] {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                #expect(!error.message.contains("hunter2") && !error.message.contains("er2") && !error.message.contains("hunt"), "\(error.message)")
            }
            #expect(!RedisConfiguration.redacted(url).contains("er2"), "\(RedisConfiguration.redacted(url))")
        }
        #expect(RedisConfiguration.redacted("unix:///s?PASSWORD=hunter2&password=x2&db=1") == "unix:///s?PASSWORD=***&password=***&db=1")
        #expect(RedisConfiguration.redacted("https://sk-user:sk-secret@proxy.example/v1") == "https://sk-user:***@proxy.example/v1")
        #expect(RedisConfiguration.redacted("https://api.example/v1?api_key=sk-secret") == "https://api.example/v1?api_key=***")
    }

    @Test("backoff doubles per failure, is capped, and jitter only shortens it")
    func backoffSchedule() {
        let backoff = RedisConfiguration.Backoff(initial: .milliseconds(10), maximum: .milliseconds(100), multiplier: 2, jitter: 0.5)
        #expect(backoff.delay(afterFailures: 0, random: 0) == .zero)
        #expect(backoff.delay(afterFailures: 1, random: 0) == .milliseconds(10))
        #expect(backoff.delay(afterFailures: 3, random: 0) == .milliseconds(40))
        #expect(backoff.delay(afterFailures: 10, random: 0) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 10, random: 0.999_999) > .milliseconds(50))
        #expect(backoff.delay(afterFailures: 10, random: 1) == .milliseconds(50))
    }

    @Test("invalid settings are rejected with what to change")
    func invalidSettings() {
        var configuration = RedisConfiguration(endpoint: .tcp(host: "h", port: 1))
        configuration.poolSize = 0
        #expect(throws: RedisError.self) { try configuration.validate() }
        configuration.poolSize = 2
        configuration.commandTimeout = .zero
        #expect(throws: RedisError.self) { try configuration.validate() }
        configuration.commandTimeout = .seconds(1)
        configuration.username = "u"
        #expect(throws: RedisError.self) { try configuration.validate() }
    }
}
