import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The HTTP rules every upstream client shares (chat completions and embeddings): one attempt
/// bounded by the caller's deadline with its failure classified, response bodies bounded in size,
/// and retries of retryable failures with capped exponential backoff and full jitter that honour
/// `Retry-After` and never wait past the deadline.
struct UpstreamTransport: Sendable {
    let http: HTTPClient
    let logger: Logger
    let maxRetries: Int
    let retryBase: Duration
    let retryCap: Duration
    let maxResponseBytes: Int

    /// An HTTP error and the `Retry-After` it asked for (seconds, or an HTTP date).
    struct HTTPFailure: Error {
        var error: UpstreamError
        var retryAfter: Duration?
    }

    /// One HTTP attempt. A deadline that passes is a timeout (with the real time since the call
    /// `started`); any other failure keeps its own cause (connection refused, reset, TLS, DNS), even
    /// when it is reported at the deadline, as async-http-client does for a pool that could never connect.
    func execute(_ request: HTTPClientRequest, started: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async throws -> HTTPClientResponse {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { throw UpstreamError.timedOut(after: ContinuousClock.now - started) }
        do {
            return try await http.execute(request, deadline: NIODeadline.now() + TimeAmount(remaining), logger: logger)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw UpstreamError.timedOut(after: ContinuousClock.now - started)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw UpstreamError.connection("\(String(describing: error)) (after \(Self.shown(ContinuousClock.now - started)))")
        }
    }

    /// The whole body, at most ``maxResponseBytes``.
    func collect(_ response: HTTPClientResponse, started: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async throws -> ByteBuffer {
        do {
            return try await response.body.collect(upTo: maxResponseBytes)
        } catch {
            if ContinuousClock.now >= deadline { throw UpstreamError.timedOut(after: ContinuousClock.now - started) }
            throw UpstreamError.connection("the response body was cut off: \(error)")
        }
    }

    /// Runs `attempt`, retrying retryable failures with capped exponential backoff (full jitter),
    /// honouring `Retry-After`, and never waiting past `deadline`.
    func withRetries<T: Sendable>(deadline: ContinuousClock.Instant, _ attempt: @Sendable () async throws -> T) async throws -> T {
        var retries = 0
        while true {
            let failure: UpstreamError
            var retryAfter: Duration?
            do {
                return try await attempt()
            } catch let error as HTTPFailure {
                failure = error.error
                retryAfter = error.retryAfter
            } catch let error as UpstreamError {
                failure = error
            }
            guard failure.isRetryable, retries < maxRetries else { throw failure }
            retries += 1
            let exponential = retryBase * (1 << min(retries - 1, 20))
            var wait = min(retryCap, exponential) * Double.random(in: 0.5...1)
            if let retryAfter { wait = max(wait, retryAfter) }
            guard ContinuousClock.now + wait < deadline else { throw failure }
            logger.info("retrying the upstream call", metadata: ["attempt": "\(retries + 1)", "wait": "\(wait)", "error": "\(failure)"])
            try await Task.sleep(for: wait)
        }
    }

    /// The typed error for a non-200 answer, keeping the upstream's message verbatim.
    static func httpFailure(_ response: HTTPClientResponse, _ body: ByteBuffer) -> HTTPFailure {
        let status = response.status
        let wire = try? JSONDecoder().decode(WireError.self, from: Data(buffer: body))
        let message = wire?.error?.message ?? String(buffer: body).prefix(200).description
        let error = UpstreamError.http(status: Int(status.code), message: message.isEmpty ? status.reasonPhrase : message, type: wire?.error?.type, code: wire?.error?.code)
        return HTTPFailure(error: error, retryAfter: response.headers.first(name: "retry-after").flatMap(parseRetryAfter))
    }

    /// `Retry-After`: delay-seconds (possibly fractional, as some proxies send) or an HTTP-date.
    static func parseRetryAfter(_ value: String) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite { return .milliseconds(Int64(min(seconds, 1e9) * 1_000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(Int64(min(max(0, date.timeIntervalSinceNow), 1e9) * 1_000))
    }

    /// "1.25 s": elapsed time for messages.
    static func shown(_ duration: Duration) -> String {
        String(format: "%.2f s", duration.secondsDouble)
    }
}
