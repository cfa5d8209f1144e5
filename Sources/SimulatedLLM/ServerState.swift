import Foundation
import Logging
import NIOCore
import Synchronization

/// What the server does with one accepted chat-completions request.
enum ResponsePlan: Sendable {
    /// A normal answer after `delay`; `truncate` cuts it (finish reason `length`).
    case answer(delay: Duration, truncate: Bool)
    /// Never answer.
    case hang
    /// The given status, header and body after `delay`.
    case status(Int, retryAfter: String?, body: String?, delay: Duration)
    /// `200` with an invalid JSON body after `delay`.
    case malformedJSON(delay: Duration)
    /// Send `afterChunks` stream chunks (or nothing for non-streams), then close.
    case cut(afterChunks: Int, delay: Duration)
}

/// Sampling of latency models.
extension LatencyModel {
    /// Draws one latency from the model.
    func sample(using generator: inout SplitMix64) -> Duration {
        sample { generator.nextUnit() }
    }

    /// Draws one latency from the model, with `unit` giving uniform draws in [0, 1).
    package func sample(unit: () -> Double) -> Duration {
        switch self {
        case .fixed(let duration):
            return max(.zero, duration)
        case .uniform(let a, let b):
            let low = min(a, b)
            let high = max(a, b)
            let draw = unit()
            return max(.zero, low + .seconds(((high - low) / .seconds(1)) * draw))
        case .logNormal(let p50, let p99):
            // Box–Muller for one standard-normal draw; z(0.99) ≈ 2.3263.
            let u1 = max(unit(), 0x1p-53)
            let u2 = unit()
            let z = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            let median = max(p50 / .seconds(1), 0)
            guard median > 0, p99 > p50 else { return max(.zero, p50) }
            let sigma = log(p99 / .seconds(1) / median) / 2.326_347_874
            let value = median * exp(sigma * z)
            return value.isFinite ? .seconds(value) : p99
        }
    }
}


/// State shared by the server object and all connection handlers.
///
/// Everything mutable lives behind one `Mutex`; the critical sections are short and never
/// block on I/O, so event-loop threads only contend briefly.
final class ServerState: Sendable {
    /// The mutable part of the state.
    private struct Mutable: Sendable {
        /// The current random behaviour.
        var behaviour: SimulatedLLMBehaviour
        /// The generator for hang/error/latency decisions.
        var generator: SplitMix64
        /// Scripted answers for the next requests, first to serve first.
        var scripted: [ScriptedResponse] = []
        /// Recorded calls since the last reset, in arrival order.
        var calls: [RecordedCall] = []
        /// Identifier of `calls[0]` (identifiers survive `resetCalls()`).
        var firstCallID = 0
        /// Identifier of the next recorded call.
        var nextCallID = 0
        /// Open connections by identifier.
        var channels: [UInt64: any Channel] = [:]
        /// Identifier of the next connection.
        var nextChannelID: UInt64 = 0
        /// Whether `stop()` was called.
        var stopped = false
        /// While set, streamed answers pause after this many content chunks.
        var holdAfterChunks: Int?
        /// Resumptions of streams paused by the hold, run on release.
        var held: [@Sendable () -> Void] = []
    }

    /// The expected API key, if authentication is enforced.
    let apiKey: String?
    /// Optional diagnostics logger.
    let logger: Logger?
    /// The mutable state.
    private let mutable: Mutex<Mutable>
    /// Counter making completion ids unique.
    private let completionCounter = Atomic<UInt64>(0)

    /// Creates the state for a new server.
    init(behaviour: SimulatedLLMBehaviour, apiKey: String?, logger: Logger?) {
        self.apiKey = apiKey
        self.logger = logger
        self.mutable = Mutex(Mutable(behaviour: behaviour, generator: Self.generator(for: behaviour)))
    }

    /// A generator seeded from the behaviour's seed, or randomly.
    private static func generator(for behaviour: SimulatedLLMBehaviour) -> SplitMix64 {
        SplitMix64(seed: behaviour.seed ?? UInt64.random(in: .min ... .max))
    }

    // MARK: Behaviour and script

    /// Replaces the behaviour and reseeds the generator.
    func setBehaviour(_ behaviour: SimulatedLLMBehaviour) {
        let generator = Self.generator(for: behaviour)
        mutable.withLock {
            $0.behaviour = behaviour
            $0.generator = generator
        }
    }

    /// The number of SSE content chunks per stream.
    var streamChunks: Int {
        mutable.withLock { max(1, $0.behaviour.streamChunks) }
    }

    /// Appends scripted answers.
    func enqueue(_ responses: [ScriptedResponse]) {
        mutable.withLock { $0.scripted.append(contentsOf: responses) }
    }

    /// Decides what to do with the next accepted request: the next scripted answer if any,
    /// otherwise a draw from the behaviour (hang, then error, then latency).
    func nextPlan() -> ResponsePlan {
        mutable.withLock { state in
            if !state.scripted.isEmpty {
                let scripted = state.scripted.removeFirst()
                switch scripted {
                case .ok:
                    return .answer(delay: state.behaviour.latency.sample(using: &state.generator), truncate: false)
                case .status(let status, let retryAfter, let body):
                    let delay = state.behaviour.latency.sample(using: &state.generator)
                    return .status(status, retryAfter: retryAfter, body: body, delay: delay)
                case .malformedJSON:
                    return .malformedJSON(delay: state.behaviour.latency.sample(using: &state.generator))
                case .hang:
                    return .hang
                case .delay(let delay):
                    return .answer(delay: max(.zero, delay), truncate: false)
                case .cutStream(let chunks):
                    let delay = state.behaviour.latency.sample(using: &state.generator)
                    return .cut(afterChunks: max(0, chunks), delay: delay)
                case .truncated:
                    return .answer(delay: state.behaviour.latency.sample(using: &state.generator), truncate: true)
                }
            }
            let hang = state.generator.nextUnit() < state.behaviour.hangRate
            let error = state.generator.nextUnit() < state.behaviour.errorRate
            let delay = state.behaviour.latency.sample(using: &state.generator)
            if hang { return .hang }
            if error { return .status(500, retryAfter: nil, body: nil, delay: delay) }
            return .answer(delay: delay, truncate: false)
        }
    }

    /// A fresh completion id embedding the answer hash.
    func completionID(hash: String) -> String {
        let serial = completionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return "chatcmpl-sim\(hash)\(String(serial, radix: 16))"
    }

    // MARK: Holding streams

    /// Makes streamed answers that start from now on pause after `chunks` content chunks.
    func holdStreams(afterChunks chunks: Int) {
        mutable.withLock { $0.holdAfterChunks = max(0, chunks) }
    }

    /// The content-chunk count after which a stream starting now pauses, if streams are held.
    var streamHoldAfterChunks: Int? {
        mutable.withLock { $0.holdAfterChunks }
    }

    /// Parks a paused stream's resumption until ``releaseStreams()``; runs it at once if
    /// streams were released meanwhile (or the server is stopping).
    func park(_ resume: @escaping @Sendable () -> Void) {
        let runNow = mutable.withLock { state -> Bool in
            guard state.holdAfterChunks != nil, !state.stopped else { return true }
            state.held.append(resume)
            return false
        }
        if runNow { resume() }
    }

    /// Stops holding streams and resumes every paused one.
    func releaseStreams() {
        let resumptions = mutable.withLock { state in
            state.holdAfterChunks = nil
            defer { state.held.removeAll() }
            return state.held
        }
        for resume in resumptions { resume() }
    }

    /// The number of streams paused by the hold right now.
    var heldStreamCount: Int {
        mutable.withLock { $0.held.count }
    }

    // MARK: Calls

    /// Records a call and returns its identifier (for ``setStatus(_:of:)``).
    func record(_ call: RecordedCall) -> Int {
        mutable.withLock {
            let id = $0.nextCallID
            $0.nextCallID += 1
            $0.calls.append(call)
            return id
        }
    }

    /// Sets the status of a recorded call (ignored if the calls were reset since).
    func setStatus(_ status: Int, of callID: Int) {
        mutable.withLock {
            let index = callID - $0.firstCallID
            if $0.calls.indices.contains(index) {
                $0.calls[index].status = status
            }
        }
    }

    /// All recorded calls in arrival order.
    var calls: [RecordedCall] {
        mutable.withLock { $0.calls }
    }

    /// The number of recorded calls.
    var callCount: Int {
        mutable.withLock { $0.calls.count }
    }

    /// Forgets all recorded calls.
    func resetCalls() {
        mutable.withLock {
            $0.calls.removeAll()
            $0.firstCallID = $0.nextCallID
        }
    }

    // MARK: Connections

    /// Registers an accepted connection; returns `nil` if the server is stopping.
    func register(_ channel: any Channel) -> UInt64? {
        mutable.withLock {
            guard !$0.stopped else { return nil }
            let id = $0.nextChannelID
            $0.nextChannelID += 1
            $0.channels[id] = channel
            return id
        }
    }

    /// Forgets a closed connection.
    func unregister(_ id: UInt64) {
        _ = mutable.withLock { $0.channels.removeValue(forKey: id) }
    }

    /// Marks the server as stopping and returns the open connections.
    ///
    /// After this call ``register(_:)`` refuses new connections, so the returned list is
    /// complete.
    func beginStop() -> [any Channel] {
        mutable.withLock {
            $0.stopped = true
            return Array($0.channels.values)
        }
    }
}
