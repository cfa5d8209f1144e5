/// How long the simulated upstream waits before it answers a request.
///
/// For streamed answers the sampled latency is spread over the chunks: the first chunk
/// leaves after half of it, the remaining chunks follow evenly, and the stream ends once the
/// whole latency has elapsed.
package enum LatencyModel: Sendable, Hashable {
    /// Always the same delay.
    case fixed(Duration)
    /// A delay drawn uniformly between the two bounds (in either order).
    case uniform(Duration, Duration)
    /// A log-normal delay with the given median (`p50`) and 99th percentile (`p99`).
    ///
    /// When `p99 <= p50` the distribution degenerates to `.fixed(p50)`.
    case logNormal(p50: Duration, p99: Duration)
}

/// The random behaviour of the simulated upstream, applied to every request that is not
/// served from the scripted queue (see ``SimulatedLLMServer/enqueue(_:)``).
package struct SimulatedLLMBehaviour: Sendable, Hashable {
    /// Time before the response is sent (for streams: spread over the chunks).
    package var latency: LatencyModel
    /// Probability (0...1) of answering `500` with an OpenAI-style error body.
    package var errorRate: Double
    /// Probability (0...1) of never answering (the connection stays open until the client
    /// gives up or ``SimulatedLLMServer/stop()`` is called).
    package var hangRate: Double
    /// Seed for the pseudo-random generator; `nil` seeds it randomly.
    ///
    /// With a seed, the sequence of decisions (hang, error, latency) is reproducible in
    /// request-arrival order.
    package var seed: UInt64?
    /// Number of SSE content chunks per streamed answer (values below 1 count as 1).
    package var streamChunks: Int

    /// Creates a behaviour; every parameter has a realistic, failure-free default.
    ///
    /// - Parameters:
    ///   - latency: Time before the response. Defaults to a fixed 50 ms.
    ///   - errorRate: Probability of a `500` answer. Defaults to 0.
    ///   - hangRate: Probability of never answering. Defaults to 0.
    ///   - seed: Seed for reproducible randomness; `nil` (default) seeds randomly.
    ///   - streamChunks: SSE content chunks per streamed answer. Defaults to 8.
    package init(
        latency: LatencyModel = .fixed(.milliseconds(50)),
        errorRate: Double = 0,
        hangRate: Double = 0,
        seed: UInt64? = nil,
        streamChunks: Int = 8
    ) {
        self.latency = latency
        self.errorRate = errorRate
        self.hangRate = hangRate
        self.seed = seed
        self.streamChunks = streamChunks
    }
}

/// One scripted answer, served to the next request instead of the random behaviour.
///
/// Every scripted answer except `.hang` and `.delay` is sent after the latency sampled from
/// the current ``SimulatedLLMBehaviour/latency``. Requests rejected before scripting applies
/// (unknown path → 404, wrong API key → 401, malformed body → 400) do not consume entries.
package enum ScriptedResponse: Sendable, Hashable {
    /// A normal answer.
    case ok
    /// The given HTTP status with an optional `Retry-After` header and body.
    ///
    /// Without a body, an OpenAI-style error JSON matching the status is sent; a 2xx status
    /// without a body sends a normal answer with that status.
    case status(Int, retryAfter: String? = nil, body: String? = nil)
    /// `200` with a body that is not valid JSON (for stream requests: an SSE event whose data
    /// is not valid JSON, followed by `[DONE]`).
    case malformedJSON
    /// Never answers (until the client disconnects or the server stops).
    case hang
    /// A normal answer after exactly this delay (instead of the behaviour's latency).
    case delay(Duration)
    /// For stream requests: sends the response head and this many content chunks, then closes
    /// the connection without the final chunk or `[DONE]`. For non-stream requests: closes the
    /// connection without any response.
    case cutStream(afterChunks: Int)
    /// A normal answer cut to about half its length, with `finish_reason` `"length"`.
    case truncated
}

/// A request received by the simulated upstream.
package struct RecordedCall: Sendable, Hashable {
    /// The `model` of the request (empty if the body could not be parsed).
    package var model: String
    /// Whether the request asked for a streamed answer.
    package var stream: Bool
    /// The text of the last `user` message (text parts joined by newlines; empty if none).
    package var lastUserMessage: String
    /// The `X-Stampede-Worker` header, if present.
    package var worker: String?
    /// The `X-Stampede-Fence` header, if present.
    package var fenceToken: String?
    /// The `Authorization` header, if present.
    package var authorization: String?
    /// When the request head arrived.
    package var receivedAt: ContinuousClock.Instant
    /// The status sent: `0` while pending, or if the request hung or the answer was cut.
    package var status: Int
    /// The path asked for: `/v1/chat/completions` or `/v1/embeddings`.
    package var endpoint: String

    /// Creates a recorded call (mostly useful to build expectations in tests).
    ///
    /// - Parameters:
    ///   - model: The requested model.
    ///   - stream: Whether a stream was requested.
    ///   - lastUserMessage: The last user message's text.
    ///   - worker: The `X-Stampede-Worker` header.
    ///   - fenceToken: The `X-Stampede-Fence` header.
    ///   - authorization: The `Authorization` header.
    ///   - receivedAt: When the request arrived.
    ///   - status: The status sent (0 if none).
    ///   - endpoint: The path asked for.
    package init(
        model: String,
        stream: Bool,
        lastUserMessage: String,
        worker: String?,
        fenceToken: String?,
        authorization: String?,
        receivedAt: ContinuousClock.Instant,
        status: Int,
        endpoint: String = "/v1/chat/completions"
    ) {
        self.endpoint = endpoint
        self.model = model
        self.stream = stream
        self.lastUserMessage = lastUserMessage
        self.worker = worker
        self.fenceToken = fenceToken
        self.authorization = authorization
        self.receivedAt = receivedAt
        self.status = status
    }
}
