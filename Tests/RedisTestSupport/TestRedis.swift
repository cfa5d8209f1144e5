package import Logging
package import RedisClient
package import RedisServerProcess
package import Testing

/// Where the integration tests find Redis.
///
/// Suites marked `.sharedRedis` run against `REDIS_URL` when it is set, otherwise against one
/// private `redis-server` that the trait starts before the suite and stops after it. A missing
/// `redis-server` is a test failure, never a skip. Tests that restart, pause or flush the server
/// use ``withPrivateRedis(_:_:)`` instead, so they cannot disturb other tests.
package enum TestRedis {
    @TaskLocal package static var url: String?

    package static var sharedURL: String {
        get throws {
            guard let url else { throw RedisError(code: .configuration, message: "the suite is not marked .sharedRedis") }
            return url
        }
    }

    package static let logger = Logger(label: "tests", factory: { _ in SwiftLogNoOpLogHandler() })

    package static func uniquePrefix(_ name: String = #function) -> String {
        "test:\(name.prefix { $0 != "(" }):\(UInt64.random(in: 0..<UInt64.max)):"
    }
}

package struct SharedRedisTrait: SuiteTrait, TestScoping {
    package var isRecursive: Bool { false }

    package func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let (url, server) = try await RedisServerProcess.fromEnvironmentOrStart(logger: TestRedis.logger)
        do {
            try await TestRedis.$url.withValue(url) { try await function() }
        } catch {
            await server?.stop()
            throw error
        }
        await server?.stop()
    }
}

extension Trait where Self == SharedRedisTrait {
    /// Runs the suite against `REDIS_URL` or one private redis-server for the whole suite.
    package static var sharedRedis: Self { SharedRedisTrait() }
}

/// Runs `body` with a private redis-server that only this test uses, stopped afterwards.
package func withPrivateRedis<T>(
    _ options: RedisServerOptions = .init(),
    _ body: (RedisServerProcess) async throws -> T
) async throws -> T {
    let server = try await RedisServerProcess.start(options, logger: TestRedis.logger)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

package func makeClient(
    _ url: String,
    poolSize: Int = 1,
    commandTimeout: Duration = .seconds(5),
    name: String? = nil,
    backoff: RedisConfiguration.Backoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
) throws -> RedisClient {
    var configuration = try RedisConfiguration(url: url)
    configuration.poolSize = poolSize
    configuration.commandTimeout = commandTimeout
    configuration.reconnectBackoff = backoff
    if let name { configuration.clientName = name }
    return try RedisClient(configuration: configuration, logger: TestRedis.logger)
}

/// Retries `body` until it succeeds or `limit` passes; returns how many attempts failed first.
package func eventually(within limit: Duration = .seconds(5), _ body: () async throws -> Void) async throws -> Int {
    let deadline = ContinuousClock.now + limit
    var failures = 0
    while true {
        do {
            try await body()
            return failures
        } catch {
            failures += 1
            if ContinuousClock.now > deadline { throw error }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Whether the client named `name` is blocked in a blocking command (BLPOP, ...) on the server now
/// (`CLIENT LIST` flag `b`), so a test can act once the server has the command instead of after a sleep.
package func isBlocked(_ name: String, admin: RedisClient) async throws -> Bool {
    let list = try await admin.send("CLIENT", "LIST").string ?? ""
    for line in list.split(whereSeparator: \.isNewline) where line.split(separator: " ").contains(Substring("name=\(name)")) {
        if let flags = line.split(separator: " ").first(where: { $0.hasPrefix("flags=") }), flags.dropFirst("flags=".count).contains("b") { return true }
    }
    return false
}

/// Waits until `condition` holds (polling the state it reads, never a fixed sleep); fails the
/// test after `limit`.
package func waitUntil(_ what: String, limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("never happened: \(what)")
}

/// Runs `body`, which must fail with a `RedisError`; records an issue and returns `nil` otherwise.
package func expectRedisError<T>(
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> RedisError? {
    do {
        let value = try await body()
        Issue.record("expected a RedisError, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as RedisError {
        return error
    } catch {
        Issue.record("expected a RedisError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Checks that a code block of README.md is, line for line, the example between
/// `// README example: NAME` and `// end of README example` in `sourceFile`, so the README only
/// shows code that compiles and runs in the tests.
package func readmeExampleMatches(_ name: String, document: String = "README.md", sourceFile: String = #filePath) throws -> (readme: String?, source: String?) {
    func contents(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
    var root = sourceFile
    while !root.isEmpty, !FileManager.default.fileExists(atPath: root + "/Package.swift") {
        root = (root as NSString).deletingLastPathComponent
        if root == "/" { break }
    }
    let readme = try contents(root + "/" + document)
    let source = try contents(sourceFile)
    func block(in text: String, from start: String, to end: String) -> String? {
        guard let startRange = text.range(of: start), let endRange = text.range(of: end, range: startRange.upperBound..<text.endIndex) else { return nil }
        let body = text[startRange.upperBound..<endRange.lowerBound]
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        // Remove the common indentation so the test file's nesting doesn't matter.
        let nonEmpty = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let indent = nonEmpty.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return lines.map { $0.count >= indent ? String($0.dropFirst(indent)) : String($0) }
            .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return (
        block(in: readme, from: "// README example: \(name)", to: "```"),
        block(in: source, from: "// README example: \(name)", to: "// end of README example")
    )
}

package import Foundation

/// The `stampede` executable next to the test bundle (built by `swift build` / `make test`).
package func stampedeBinary() throws -> String {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory.appending(path: "stampede"), directory.deletingLastPathComponent().appending(path: "stampede")] {
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
    }
    throw RedisError(code: .configuration, message: "the stampede executable is not built next to \(directory.path); run `swift build` first (make test does)")
}
