import NIOCore
package import RedisClient
package import Metrics
import Synchronization

/// Batches concurrent fresh-hit reads into one `MGET` (automatic pipelining of reads), each
/// distinct key once.
///
/// Up to `limit` reads (the client's pool size) go to Redis on their own, as plain `GET`s, so a
/// lone caller never waits for anyone. While all of them are out, further reads queue; when one
/// comes back, the queue (up to ``maximumBatch`` keys) leaves as a single `MGET`, sent by the
/// first caller in it, which hands every other caller its own reply. Under concurrency the cost of
/// a command (encoding, the hops to and from the event loop, the promise) is paid once per batch
/// instead of once per read, which is how a cache hit can outrun a bare `GET` of the same value.
///
/// Freshness stays a server-clock decision. While the ``ServerClock`` has a usable sample, a read
/// or batch is a bare `GET` / `MGET`, and each caller takes the time *after* its reply reached it,
/// so the server-clock upper bound it computes is at least as late as the one a single `GET` would
/// give. Without one (none yet, an old one, or a loaded machine whose round trips exceed the
/// clock's bound), the read or batch carries `TIME` in front (`TIME` + `GET` or `TIME` + `MGET` in
/// one write): every caller in it gets that reply's server time, read before its value, and the
/// reply becomes the clock's next sample. So batching never switches off for lack of a clock.
/// Only for a standalone server (on a cluster the keys of a batch live on different nodes); a
/// queued read is not cancellable, but it is bounded by the command timeout of the batch it
/// leaves in.
package final class ReadBatcher: Sendable {
    /// Most keys in one `MGET`.
    package static let maximumBatch = 128

    /// How a queued read goes on once it leaves the queue.
    private enum Ticket: Sendable {
        /// A slot was free: send a `GET` of its own.
        case alone
        /// It is first in the batch that leaves now: send the `MGET` for all of them.
        case lead([Member])
        /// Another caller sent its key in a batch: here is its reply.
        case value(BatchedRead)
    }

    /// A queued read.
    private struct Member: Sendable {
        var key: String
        var continuation: CheckedContinuation<Ticket, any Error>
    }

    private struct State {
        /// Reads or batches out at Redis now (at most `limit`).
        var inFlight = 0
        /// Queued reads; non-empty only while all `limit` slots are out.
        var queue: [Member] = []
        /// Reads sent inside a batch, batches sent, and the distinct keys they read (metrics and tests).
        var batchedReads = 0
        var batches = 0
        var batchedKeys = 0
    }

    private let redis: RedisClient
    /// Decides whether a read needs `TIME` in front; `nil`: never (plain reads).
    private let clock: ServerClock?
    private let limit: Int
    private let state = Mutex(State())
    /// `stampede_cache_batched_reads_total` and `stampede_cache_read_batches_total`, if counted.
    private let counters: (reads: Counter, batches: Counter)?

    /// A batcher sending through `redis`, with at most `limit` reads or batches out at once,
    /// counting batched reads and batches in `counters`. With `clock`, a read or batch sent while
    /// the clock has no usable sample carries `TIME` in front, and records its reply as a sample.
    package init(redis: RedisClient, limit: Int, clock: ServerClock? = nil, counters: (reads: Counter, batches: Counter)? = nil) {
        self.redis = redis
        self.clock = clock
        self.limit = max(1, limit)
        self.counters = counters
    }

    /// Reads and batches sent so far: `(reads that left in a batch, batches sent)`.
    package var batchCounts: (reads: Int, batches: Int) {
        state.withLock { ($0.batchedReads, $0.batches) }
    }

    /// Distinct keys read by the batches sent so far (at most ``batchCounts``' reads).
    package var batchedKeyCount: Int {
        state.withLock { $0.batchedKeys }
    }

    /// Reads waiting in the queue right now (tests synchronise on it).
    package var queuedCount: Int {
        state.withLock { $0.queue.count }
    }

    /// Holds a slot as an outstanding read would until `body` returns, then gives it to the queue.
    /// Tests use it to queue reads behind it and observe the batch they leave in.
    package func withSlotTaken<T>(_ body: () async throws -> T) async rethrows -> T {
        state.withLock { $0.inFlight += 1 }
        defer { releaseSlot() }
        return try await body()
    }

    /// The `GET` reply for `key`, possibly fetched together with other callers' keys, and the
    /// server's time (ms) when `TIME` went in front of it.
    package func get(_ key: String) async throws(RedisError) -> BatchedRead {
        let alone = state.withLock { state -> Bool in
            guard state.inFlight < limit, state.queue.isEmpty else { return false }
            state.inFlight += 1
            return true
        }
        if alone { return try await sendAlone(key) }
        let ticket: Ticket
        do {
            ticket = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Ticket, any Error>) in
                let runNow = state.withLock { state -> Bool in
                    // A slot may have come free since the first look.
                    if state.inFlight < limit, state.queue.isEmpty {
                        state.inFlight += 1
                        return true
                    }
                    state.queue.append(Member(key: key, continuation: continuation))
                    return false
                }
                if runNow { continuation.resume(returning: .alone) }
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "a batched read failed: \(error)")
        }
        switch ticket {
        case .alone: return try await sendAlone(key)
        case .value(let value): return value
        case .lead(let batch): return try await lead(batch)
        }
    }

    /// A `GET` in a slot of its own; the slot goes to the queue afterwards.
    private func sendAlone(_ key: String) async throws(RedisError) -> BatchedRead {
        defer { releaseSlot() }
        let command = RedisCommand("GET", RedisArgument(key))
        guard needsTime() else { return BatchedRead(value: try await redis.send(command), serverMillis: nil) }
        let (value, millis) = try await sendTimed(command)
        return BatchedRead(value: value, serverMillis: millis)
    }

    /// Whether a read sent now needs `TIME` in front: the clock has no usable sample.
    private func needsTime() -> Bool {
        guard let clock else { return false }
        return clock.upperBound(at: .now) == nil
    }

    /// `TIME` and `command` in one write; records the `TIME` reply as the clock's sample.
    private func sendTimed(_ command: RedisCommand) async throws(RedisError) -> (RESPValue, Int64) {
        let sent = ContinuousClock.now
        let (timeReply, reply) = try await redis.send(preEncoded: FastReadCommands.time, then: command)
        let received = ContinuousClock.now
        let millis = try FastRead.millis(time: timeReply)
        clock?.record(serverMillis: millis, sent: sent, received: received)
        return (reply, millis)
    }

    /// Sends `batch` (this caller first) as one `MGET` and hands out the replies.
    private func lead(_ batch: [Member]) async throws(RedisError) -> BatchedRead {
        defer { releaseSlot() }
        let replies: [RESPValue]
        var millis: Int64?
        // Each distinct key is read once: concurrent reads of one hot key share its reply (the
        // value's bytes are shared, not copied), as concurrent calls of one flight would.
        var keys: [String] = []
        var position: [Int] = []
        if batch.count > 1 {
            var index: [String: Int] = [:]
            index.reserveCapacity(batch.count)
            position.reserveCapacity(batch.count)
            for member in batch {
                if let known = index[member.key] {
                    position.append(known)
                } else {
                    index[member.key] = keys.count
                    position.append(keys.count)
                    keys.append(member.key)
                }
            }
        } else {
            keys = [batch[0].key]
            position = [0]
        }
        do throws(RedisError) {
            let command = keys.count == 1
                ? RedisCommand("GET", RedisArgument(keys[0]))
                : RedisCommand("MGET", keys.map { RedisArgument($0) })
            let reply: RESPValue
            if needsTime() {
                let timed = try await sendTimed(command)
                (reply, millis) = (timed.0, timed.1)
            } else {
                reply = try await redis.send(command)
            }
            if keys.count == 1 {
                replies = [reply]
            } else {
                if case .error(let message) = reply { throw RedisError(code: .server, message: message) }
                guard let values = reply.array, values.count == keys.count else {
                    throw RedisError(code: .protocolError, message: "MGET of \(keys.count) keys answered \(reply)")
                }
                replies = values
            }
        } catch {
            for member in batch.dropFirst() { member.continuation.resume(throwing: error) }
            throw error
        }
        state.withLock {
            $0.batchedReads += batch.count
            $0.batches += 1
            $0.batchedKeys += keys.count
        }
        counters?.reads.increment(by: batch.count)
        counters?.batches.increment()
        for (member, at) in zip(batch, position).dropFirst() {
            member.continuation.resume(returning: .value(BatchedRead(value: replies[at], serverMillis: millis)))
        }
        return BatchedRead(value: replies[position[0]], serverMillis: millis)
    }

    /// Gives a finished slot to the queue (its first caller sends the rest with its own key), or
    /// frees it.
    private func releaseSlot() {
        let batch = state.withLock { state -> [Member]? in
            guard !state.queue.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            let count = min(state.queue.count, Self.maximumBatch)
            let batch = Array(state.queue.prefix(count))
            state.queue.removeFirst(count)
            return batch
        }
        if let batch { batch[0].continuation.resume(returning: .lead(batch)) }
    }
}
