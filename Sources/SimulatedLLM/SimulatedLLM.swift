package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// An in-process HTTP/1.1 server speaking the OpenAI chat-completions shape, used as a
/// simulated LLM upstream by the demo, by tests of upstream clients and by chaos runs.
///
/// It listens on `127.0.0.1` on an ephemeral port and serves `POST /v1/chat/completions`
/// (anything else gets a 404 JSON error). Answers are deterministic from the request's model
/// and messages; latency, errors and hangs follow a ``SimulatedLLMBehaviour`` or a queue of
/// ``ScriptedResponse``s. Connections are kept alive and run on the shared NIO event-loop
/// group; all delays are scheduled on the event loops. Call ``stop()`` when done.
package final class SimulatedLLMServer: Sendable {
    /// State shared with the connection handlers.
    private let state: ServerState
    /// The listening channel.
    private let serverChannel: any Channel

    /// The TCP port the server listens on (on `127.0.0.1`).
    package let port: Int

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    package var baseURL: String {
        "http://127.0.0.1:\(port)/v1"
    }

    /// Creates a server around a bound listening channel.
    private init(state: ServerState, serverChannel: any Channel, port: Int) {
        self.state = state
        self.serverChannel = serverChannel
        self.port = port
    }

    /// Closes the listener and all connections if ``stop()`` was never called.
    deinit {
        serverChannel.close(promise: nil)
        for channel in state.beginStop() {
            channel.close(promise: nil)
        }
    }

    /// Starts a server on `127.0.0.1` with an ephemeral port.
    ///
    /// - Parameters:
    ///   - behaviour: The initial random behaviour (latency, error and hang rates, seed).
    ///   - apiKey: If set, requests without `Authorization: Bearer <apiKey>` get a 401.
    ///   - logger: Optional logger for diagnostics (debug/trace level).
    /// - Returns: The running server.
    /// - Throws: If the listening socket cannot be bound.
    package static func start(
        _ behaviour: SimulatedLLMBehaviour = .init(),
        apiKey: String? = nil,
        logger: Logger? = nil
    ) async throws -> SimulatedLLMServer {
        let state = ServerState(behaviour: behaviour, apiKey: apiKey, logger: logger)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard let id = state.register(channel) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                channel.closeFuture.whenComplete { _ in state.unregister(id) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ChatCompletionsHandler(state: state))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else {
            try? await channel.close()
            throw SimulatedLLMServerError(message: "the listening socket has no local port")
        }
        logger?.debug("simulated LLM listening", metadata: ["port": "\(port)"])
        return SimulatedLLMServer(state: state, serverChannel: channel, port: port)
    }

    /// Replaces the random behaviour (and reseeds its generator) for the next requests.
    package func setBehaviour(_ behaviour: SimulatedLLMBehaviour) {
        state.setBehaviour(behaviour)
    }

    /// Queues scripted answers, served to the next requests in order before the behaviour
    /// applies again.
    package func enqueue(_ responses: [ScriptedResponse]) {
        state.enqueue(responses)
    }

    /// Makes streamed answers that start from now on pause after `chunks` content chunks
    /// until ``releaseStreams()``.
    ///
    /// Tests use it to observe what happens *while* an answer streams (a follower's first
    /// piece arriving live, for instance) by waiting for that event instead of for time.
    package func holdStreams(afterChunks chunks: Int) {
        state.holdStreams(afterChunks: chunks)
    }

    /// Stops holding streams and lets every paused one finish (after its remaining delays).
    package func releaseStreams() {
        state.releaseStreams()
    }

    /// The number of streamed answers paused by ``holdStreams(afterChunks:)`` right now.
    package var heldStreamCount: Int {
        state.heldStreamCount
    }

    /// Every request received (including rejected ones), in arrival order.
    package var calls: [RecordedCall] {
        state.calls
    }

    /// The number of requests received since the last ``resetCalls()``.
    package var callCount: Int {
        state.callCount
    }

    /// Forgets the recorded calls.
    package func resetCalls() {
        state.resetCalls()
    }

    /// Closes the listener and every open connection, including hung requests.
    ///
    /// Returns once all of them are closed; never waits for pending answers. Calling it
    /// again is harmless.
    package func stop() async {
        let connections = state.beginStop()
        state.releaseStreams()
        serverChannel.close(promise: nil)
        for connection in connections {
            connection.close(promise: nil)
        }
        try? await serverChannel.closeFuture.get()
        for connection in connections {
            try? await connection.closeFuture.get()
        }
        state.logger?.debug("simulated LLM stopped", metadata: ["port": "\(port)"])
    }
}

/// An error starting a ``SimulatedLLMServer``.
package struct SimulatedLLMServerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    package var message: String

    /// A readable description.
    package var description: String {
        "SimulatedLLMServerError: \(message)"
    }
}
