import Foundation
import Subprocess
import SystemPackage

/// Certificates made at run time with the `openssl` CLI (tests, `stampede bench client --tls`), in a fresh temporary directory: a CA,
/// a server certificate for 127.0.0.1/localhost, a client certificate, and the bad ones the TLS
/// tests need (another CA, an expired server certificate, one for the wrong name, a client
/// certificate from the other CA).
package struct TestCertificates: Sendable {
    /// The directory holding every file.
    package let directory: String

    package var caFile: String { "\(directory)/ca.pem" }
    package var serverCertificate: String { "\(directory)/server.pem" }
    package var serverKey: String { "\(directory)/server.key" }
    package var clientCertificate: String { "\(directory)/client.pem" }
    package var clientKey: String { "\(directory)/client.key" }
    /// A CA that signed nothing the server presents.
    package var otherCAFile: String { "\(directory)/other-ca.pem" }
    /// A server certificate (CA-signed, right names) that expired in 2021.
    package var expiredServerCertificate: String { "\(directory)/expired.pem" }
    /// A server certificate (CA-signed, valid now) that names only redis.example.com.
    package var wrongNameServerCertificate: String { "\(directory)/wrongname.pem" }
    /// A client certificate signed by the other CA.
    package var rogueClientCertificate: String { "\(directory)/rogue-client.pem" }
    package var rogueClientKey: String { "\(directory)/rogue-client.key" }

    /// Generates every file; takes about a second (RSA-2048 keys).
    package static func make() async throws -> TestCertificates {
        let directory = NSTemporaryDirectory() + "stampede-tls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        try await certificates.generate()
        return certificates
    }

    /// Removes the directory.
    package func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func openssl(_ arguments: [String]) async throws {
        let result = try await Subprocess.run(
            .name("openssl"), arguments: Arguments(arguments), input: .none,
            output: .discarded, error: .string(limit: 1 << 16)
        )
        guard result.terminationStatus == .exited(0) else {
            throw LocalServicesError("openssl \(arguments.prefix(2).joined(separator: " ")) failed (\(result.terminationStatus)): \(result.standardError.suffix(2_000)). Install it with: apt-get install openssl")
        }
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
    }

    private func generate() async throws {
        let d = directory
        for ca in ["ca", "other-ca"] {
            try await openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                               "-keyout", "\(d)/\(ca).key", "-out", "\(d)/\(ca).pem", "-subj", "/CN=StampedeCache test \(ca)"])
        }
        try write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        try write("wrongname.ext", "subjectAltName=DNS:redis.example.com\nextendedKeyUsage=serverAuth\n")
        try write("client.ext", "extendedKeyUsage=clientAuth\n")
        func issue(_ name: String, key: String, ca: String, ext: String, subject: String) async throws {
            try await openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/\(key).key", "-out", "\(d)/\(name).csr", "-subj", subject])
            try await openssl(["x509", "-req", "-in", "\(d)/\(name).csr", "-CA", "\(d)/\(ca).pem", "-CAkey", "\(d)/\(ca).key", "-CAcreateserial",
                               "-days", "825", "-sha256", "-extfile", "\(d)/\(ext)", "-out", "\(d)/\(name).pem"])
        }
        try await issue("server", key: "server", ca: "ca", ext: "server.ext", subject: "/CN=localhost")
        try await issue("client", key: "client", ca: "ca", ext: "client.ext", subject: "/CN=stampede-worker")
        try await issue("rogue-client", key: "rogue-client", ca: "other-ca", ext: "client.ext", subject: "/CN=rogue")
        // Same key as the good server certificate, so only the certificate differs.
        try await openssl(["req", "-new", "-key", "\(d)/server.key", "-out", "\(d)/wrongname.csr", "-subj", "/CN=redis.example.com"])
        try await openssl(["x509", "-req", "-in", "\(d)/wrongname.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial",
                           "-days", "825", "-sha256", "-extfile", "\(d)/wrongname.ext", "-out", "\(d)/wrongname.pem"])
        // An expired certificate: `openssl x509` cannot back-date, `openssl ca` can.
        try FileManager.default.createDirectory(atPath: "\(d)/ca-db", withIntermediateDirectories: true)
        try write("ca-db/index.txt", "")
        try write("ca-db/serial", "1000\n")
        try write("ca.cnf", """
            [ ca ]
            default_ca = test
            [ test ]
            database = \(d)/ca-db/index.txt
            serial = \(d)/ca-db/serial
            new_certs_dir = \(d)/ca-db
            default_md = sha256
            policy = anything
            copy_extensions = none
            [ anything ]
            commonName = supplied
            [ server_ext ]
            subjectAltName = IP:127.0.0.1,DNS:localhost
            extendedKeyUsage = serverAuth

            """)
        try await openssl(["req", "-new", "-key", "\(d)/server.key", "-out", "\(d)/expired.csr", "-subj", "/CN=localhost"])
        try await openssl(["ca", "-batch", "-config", "\(d)/ca.cnf", "-cert", "\(d)/ca.pem", "-keyfile", "\(d)/ca.key",
                           "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-extensions", "server_ext",
                           "-notext", "-in", "\(d)/expired.csr", "-out", "\(d)/expired.pem"])
    }
}

extension TestCertificates {
    /// One set of certificates for the whole test process (made on first use).
    package static let shared = Task { try await TestCertificates.make() }
}
