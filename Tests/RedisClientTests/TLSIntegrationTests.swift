import LocalServices
import RedisClient
import RedisServerProcess
import RedisTestSupport
import Testing

/// The client against real redis-server processes speaking TLS, with certificates made by the
/// `openssl` CLI at test time: good paths (server auth, mutual TLS, SNI), and every refusal as a
/// typed ``RedisError/Code/tls`` that says what to change.
@Suite("TLS against a real redis-server")
struct TLSIntegrationTests {
    private func certificates() async throws -> TestCertificates { try await TestCertificates.shared.value }

    private func client(_ url: String) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url, environment: [:])
        configuration.poolSize = 2
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
        return try RedisClient(configuration: configuration, logger: TestRedis.logger)
    }

    /// The first command's error (every test here expects the connection itself to be refused).
    private func refusal(_ url: String) async throws -> RedisError? {
        let client = try client(url)
        defer { Task { await client.close() } }
        return await expectRedisError { try await client.ping() }
    }

    @Test("rediss:// with the CA: commands, pipelines, 64 concurrent callers, scripts and pub/sub all work over TLS")
    func roundTrips() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs) { server in
            let client = try client(server.url(["tls_ca_file": certs.caFile]))
            #expect(try await client.ping() == "PONG")
            try await client.set("tls:k", to: "value")
            #expect(try await client.get("tls:k").map { String(buffer: $0) } == "value")
            let replies = try await client.send(pipeline: [RedisCommand("INCR", "tls:n"), RedisCommand("INCR", "tls:n"), RedisCommand("GET", "tls:n")])
            #expect(replies.map(\.string) == [nil, nil, "2"])
            let counts = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<64 { group.addTask { try await client.send("INCR", "tls:c").int ?? -1 } }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(counts.sorted() == Array(1...64))
            let script = RedisScript(name: "echo", source: "return ARGV[1]")
            #expect(try await client.evalSHA(script, args: ["over-tls"]).string == "over-tls")
            let subscription = try await client.subscriber.subscribe(to: ["tls:channel"])
            #expect(try await client.publish("hello", to: "tls:channel") == 1)
            var iterator = subscription.makeAsyncIterator()
            guard case .message(let message) = await iterator.next() else { Issue.record("no message"); return }
            #expect(String(buffer: message.payload) == "hello")
            // The server saw TLS connections (its INFO counts none over plaintext TCP: --port 0).
            let admin = try makeClient(server.server.url)
            let clients = try await admin.send("CLIENT", "LIST").string ?? ""
            #expect(clients.split(separator: "\n").filter { $0.contains("laddr=127.0.0.1:\(server.tlsPort)") }.count >= 2)
            await admin.close()
            await client.close()
        }
    }

    @Test("connecting by host name sends SNI and verifies the DNS name (localhost)")
    func hostName() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs) { server in
            let client = try client(server.url(host: "localhost", ["tls_ca_file": certs.caFile]))
            #expect(try await client.ping() == "PONG")
            await client.close()
        }
    }

    @Test("mutual TLS: with the client certificate it works; without it, or with one from another CA, a .tls error says what to set")
    func mutualTLS() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs, authClients: "yes") { server in
            let good = try client(server.url(["tls_ca_file": certs.caFile, "tls_cert_file": certs.clientCertificate, "tls_key_file": certs.clientKey]))
            #expect(try await good.ping() == "PONG")
            await good.close()

            let missing = try await refusal(server.url(["tls_ca_file": certs.caFile]))
            #expect(missing?.code == .tls)
            #expect(missing?.message.contains("requires a client certificate") == true, "\(String(describing: missing))")
            #expect(missing?.message.contains("REDIS_TLS_CERT_FILE") == true)

            let rogue = try await refusal(server.url(["tls_ca_file": certs.caFile, "tls_cert_file": certs.rogueClientCertificate, "tls_key_file": certs.rogueClientKey]))
            #expect(rogue?.code == .tls)
            #expect(rogue?.message.contains("refused this client's certificate") == true, "\(String(describing: rogue))")
        }
    }

    @Test("a server certificate from a CA we do not trust is refused, naming the CA file to change")
    func wrongCA() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs) { server in
            let error = try await refusal(server.url(["tls_ca_file": certs.otherCAFile]))
            #expect(error?.code == .tls)
            #expect(error?.message.contains("not signed by a CA in the CA file \(certs.otherCAFile)") == true, "\(String(describing: error))")
            // No CA file: the system's trust roots do not know the test CA either.
            let system = try await refusal(server.url())
            #expect(system?.message.contains("the system's trust roots") == true, "\(String(describing: system))")
        }
    }

    @Test("an expired server certificate is refused, saying when it expired")
    func expired() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs, certificate: certs.expiredServerCertificate) { server in
            let error = try await refusal(server.url(["tls_ca_file": certs.caFile]))
            #expect(error?.code == .tls)
            #expect(error?.message.contains("expired on 2021-01-01T00:00:00Z") == true, "\(String(describing: error))")
        }
    }

    @Test("a certificate for another name is refused; tls_server_name set to the name it carries is accepted")
    func hostnameMismatch() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs, certificate: certs.wrongNameServerCertificate) { server in
            let error = try await refusal(server.url(["tls_ca_file": certs.caFile]))
            #expect(error?.code == .tls)
            #expect(error?.message.contains("does not name the IP address 127.0.0.1") == true, "\(String(describing: error))")
            let byName = try await refusal(server.url(host: "localhost", ["tls_ca_file": certs.caFile]))
            #expect(byName?.message.contains("does not name localhost") == true, "\(String(describing: byName))")
            let named = try client(server.url(["tls_ca_file": certs.caFile, "tls_server_name": "redis.example.com"]))
            #expect(try await named.ping() == "PONG")
            await named.close()
        }
    }

    @Test("insecure-skip-verification accepts an untrusted, misnamed certificate (and is logged as insecure)")
    func insecureSwitch() async throws {
        let certs = try await certificates()
        try await withTLSRedis(certs, certificate: certs.wrongNameServerCertificate) { server in
            let client = try client(server.url(["tls_ca_file": certs.otherCAFile, "tls_insecure_skip_verify": "true"]))
            #expect(try await client.ping() == "PONG")
            await client.close()
        }
    }

    @Test("TLS to a plaintext port, and a missing CA file, are refused with what to do")
    func plaintextPortAndMissingFile() async throws {
        var options = RedisServerOptions()
        options.unixSocket = false
        options.tcpPort = 0
        try await withPrivateRedis(options) { server in
            let port = try #require(server.port)
            // Redis reads the ClientHello as the start of an inline command and waits for its end,
            // so the handshake gets no answer: a timeout whose message names the likely cause.
            var configuration = try RedisConfiguration(url: "rediss://127.0.0.1:\(port)?tls_insecure_skip_verify=true", environment: [:])
            configuration.connectTimeout = .seconds(1)
            let client = try RedisClient(configuration: configuration, logger: TestRedis.logger)
            let error = await expectRedisError { try await client.ping() }
            await client.close()
            #expect(error?.code == .timeout)
            #expect(error?.message.contains("may not speak TLS on this port") == true, "\(String(describing: error))")
        }
        let missing = try await refusal("rediss://127.0.0.1:1?tls_ca_file=/nonexistent/ca.pem")
        #expect(missing?.code == .tls)
        #expect(missing?.message.contains("cannot read the CA file (REDIS_TLS_CA_FILE) /nonexistent/ca.pem") == true, "\(String(describing: missing))")
    }
}
