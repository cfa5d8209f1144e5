package import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the `NIOSSLContext` of a ``RedisTLSConfiguration`` and keeps it while its files are
/// unchanged.
///
/// A context loads and parses the CA, certificate and key files, so it is built once and shared by
/// every connection with the same settings. The cache key includes each file's modification time
/// and size: a rotated client certificate or CA bundle is picked up by the next connection, without
/// restarting the process.
package enum TLSContextCache {
    private struct Key: Hashable {
        var tls: RedisTLSConfiguration
        var stamps: [FileStamp?]
    }

    private struct FileStamp: Hashable {
        var seconds: Int
        var nanoseconds: Int
        var size: Int
    }

    private static let contexts = Mutex<[Key: NIOSSLContext]>([:])

    /// The context for `tls`, built now if its files are new or changed.
    ///
    /// - Throws: ``RedisError/Code/tls`` naming the file that cannot be read or parsed.
    package static func context(for tls: RedisTLSConfiguration) throws(RedisError) -> NIOSSLContext {
        let key = Key(tls: tls, stamps: [tls.caFile, tls.certificateFile, tls.privateKeyFile].map { $0.flatMap(stamp) })
        if let cached = contexts.withLock({ $0[key] }) { return cached }
        let context = try build(tls)
        contexts.withLock { cache in
            // Settings with an older stamp are stale now; keep the cache small.
            cache = cache.filter { $0.key.tls != tls }
            cache[key] = context
        }
        return context
    }

    private static func stamp(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        return FileStamp(seconds: Int(info.st_mtimespec.tv_sec), nanoseconds: Int(info.st_mtimespec.tv_nsec), size: Int(info.st_size))
        #else
        return FileStamp(seconds: Int(info.st_mtim.tv_sec), nanoseconds: Int(info.st_mtim.tv_nsec), size: Int(info.st_size))
        #endif
    }

    private static func build(_ tls: RedisTLSConfiguration) throws(RedisError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch tls.verification {
        case .full: configuration.certificateVerification = .fullVerification
        case .insecureSkipVerification: configuration.certificateVerification = .none
        }
        if let caFile = tls.caFile {
            let certificates = try load("CA file (REDIS_TLS_CA_FILE)", caFile) { try NIOSSLCertificate.fromPEMFile(caFile) }
            if certificates.isEmpty {
                throw RedisError(code: .tls, message: "the CA file (REDIS_TLS_CA_FILE) \(caFile) holds no PEM certificate")
            }
            configuration.trustRoots = .certificates(certificates)
        }
        if let certificateFile = tls.certificateFile, let keyFile = tls.privateKeyFile {
            let chain = try load("client certificate file (REDIS_TLS_CERT_FILE)", certificateFile) { try NIOSSLCertificate.fromPEMFile(certificateFile) }
            if chain.isEmpty {
                throw RedisError(code: .tls, message: "the client certificate file (REDIS_TLS_CERT_FILE) \(certificateFile) holds no PEM certificate")
            }
            let key = try load("client key file (REDIS_TLS_KEY_FILE)", keyFile) { try NIOSSLPrivateKey(file: keyFile, format: .pem) }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // Most often: the private key does not belong to the certificate.
            throw RedisError(code: .tls, message: "cannot set up TLS with these files: \(error). Check that REDIS_TLS_KEY_FILE is the key of REDIS_TLS_CERT_FILE")
        }
    }

    /// Reads a file with `body`, turning a missing, unreadable or unparsable file into a
    /// ``RedisError/Code/tls`` that names it (paths are not secrets; contents never appear).
    private static func load<T>(_ what: String, _ path: String, _ body: () throws -> T) throws(RedisError) -> T {
        if access(path, R_OK) != 0 {
            let reason = String(cString: strerror(errno))
            throw RedisError(code: .tls, message: "cannot read the \(what) \(path): \(reason)")
        }
        do {
            return try body()
        } catch {
            throw RedisError(code: .tls, message: "the \(what) \(path) is not a valid PEM file (\(error))")
        }
    }
}
