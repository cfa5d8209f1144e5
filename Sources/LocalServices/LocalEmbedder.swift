import AsyncHTTPClient
import Foundation
package import Logging
import RedisServerProcess
import Subprocess
import Synchronization
import SystemPackage

/// The local OpenAI-compatible embeddings server (`scripts/embedder/server.py`: the real
/// all-MiniLM-L6-v2, 384 dimensions, numpy forward pass), as a child process.
///
/// Used by the semantic tests, `stampede demo --semantic`, `stampede tune semantic` and
/// `stampede bench semantic`. Its Python environment is installed by `scripts/ensure-embedder.sh`
/// into a cache folder outside git (about 230 MB, no torch).
///
/// ```swift
/// try await LocalEmbedder.withRunning { baseURL in ... }   // e.g. http://127.0.0.1:40123/v1
/// ```
package final class LocalEmbedder: Sendable {
    /// The model the server runs (the `model` to send).
    package static let model = "all-MiniLM-L6-v2"
    /// Its embedding size.
    package static let dimensions = 384

    /// The API root to configure an embeddings client with (`…/v1`).
    package let baseURL: String
    /// The child's process id.
    package let pid: Int32
    private let running: Task<TerminationStatus?, Never>
    private let exited: ExitedFlag

    private init(baseURL: String, pid: Int32, running: Task<TerminationStatus?, Never>, exited: ExitedFlag) {
        self.baseURL = baseURL
        self.pid = pid
        self.running = running
        self.exited = exited
    }

    /// Starts the server and returns once it answers `GET /health` (installing its environment first
    /// when missing; `STAMPEDE_EMBEDDER_PYTHON` names an existing interpreter instead).
    /// - Throws: ``LocalServicesError`` when it cannot be installed or does not come up within `readyWithin`.
    package static func start(readyWithin: Duration = .seconds(120), logger: Logger? = nil) async throws -> LocalEmbedder {
        let python: String
        if let configured = ProcessInfoEnvironment.value("STAMPEDE_EMBEDDER_PYTHON") {
            python = configured
        } else {
            python = try await InstallScript.run("ensure-embedder.sh")
        }
        let script = InstallScript.scriptsDirectory + "/embedder/server.py"
        let port = try ServerSupport.pickFreePort()
        let environment = Environment.inherit.updating([
            Environment.Key(rawValue: "OPENBLAS_NUM_THREADS")!: "1",
            Environment.Key(rawValue: "OMP_NUM_THREADS")!: "1",
            Environment.Key(rawValue: "HF_HUB_OFFLINE")!: "1",
        ])
        let exited = ExitedFlag()
        let (started, starting) = AsyncStream<Result<Int32, any Error>>.makeStream()
        let running = Task { () -> TerminationStatus? in
            defer { exited.value.store(true, ordering: .sequentiallyConsistent) }
            do {
                let result = try await Subprocess.run(
                    .path(FilePath(python)), arguments: [script, "--host", "127.0.0.1", "--port", String(port)],
                    environment: environment, input: .none, output: .discarded, error: .discarded
                ) { execution in
                    ProcessCleanup.register(pid: execution.processIdentifier.value)
                    starting.yield(.success(execution.processIdentifier.value))
                    starting.finish()
                }
                return result.terminationStatus
            } catch {
                starting.yield(.failure(error))
                starting.finish()
                return nil
            }
        }
        var iterator = started.makeAsyncIterator()
        guard let outcome = await iterator.next() else { throw LocalServicesError("the embedding server did not start") }
        let pid = try outcome.get()
        let embedder = LocalEmbedder(baseURL: "http://127.0.0.1:\(port)/v1", pid: pid, running: running, exited: exited)
        do {
            try await embedder.waitUntilHealthy(within: readyWithin)
        } catch {
            await embedder.stop()
            throw error
        }
        logger?.info("started the local embedding server", metadata: ["pid": "\(pid)", "url": "\(embedder.baseURL)"])
        return embedder
    }

    /// Runs `body` with a started server, stopped afterwards (also when `body` throws).
    package static func withRunning<T: Sendable>(logger: Logger? = nil, _ body: (LocalEmbedder) async throws -> T) async throws -> T {
        let embedder = try await start(logger: logger)
        do {
            let result = try await body(embedder)
            await embedder.stop()
            return result
        } catch {
            await embedder.stop()
            throw error
        }
    }

    /// Stops the server (SIGTERM, then waits for it to exit).
    package func stop() async {
        if !exited.value.load(ordering: .sequentiallyConsistent) { kill(pid, SIGTERM) }
        _ = await running.value
        ProcessCleanup.unregister(pid: pid)
    }

    /// Requests and inputs the server has embedded so far (its own count: an independent record).
    package func served() async throws -> (requests: Int, inputs: Int) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL.replacingOccurrences(of: "/v1", with: "") + "/stats"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        struct Stats: Decodable { var requests: Int; var inputs: Int }
        let stats = try JSONDecoder().decode(Stats.self, from: Data(body.readableBytesView))
        return (stats.requests, stats.inputs)
    }

    private func waitUntilHealthy(within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        let health = baseURL.replacingOccurrences(of: "/v1", with: "") + "/health"
        while ContinuousClock.now < deadline {
            if exited.value.load(ordering: .sequentiallyConsistent) {
                throw LocalServicesError("the embedding server exited while starting; run `\(InstallScript.scriptsDirectory)/embedder/server.py` by hand to see why")
            }
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: health), timeout: .seconds(2)), response.status == .ok {
                _ = try? await response.body.collect(upTo: 1 << 16)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalServicesError("the embedding server did not answer \(health) within \(limit)")
    }
}
