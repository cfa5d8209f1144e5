package import NIOCore
package import RedisClient
package import Metrics
import Synchronization

/// Batches concurrent fresh-hit reads into one `MGET` (automatic pipelining of reads), each
/// distinct key once, and keeps the pipeline full from the event loop.
///
/// Up to `limit` reads or batches (the client's pool size) are out at Redis at once. A read that
/// finds a slot free and nobody queued leaves at once as a plain `GET`, sent like any command
/// (a single caller never waits for anyone, and pays for no batch); while every slot is out,
/// reads queue. When a reply comes back, the connection's
/// event loop itself sends the queue (up to ``maximumBatch`` keys) as the next `MGET` and then
/// hands the finished batch's callers their replies: between one batch's reply and the next
/// batch's write there is no task to wake and no thread hop. Under concurrency the cost of a
/// command (encoding, the write, the reply's parse) is paid once per batch instead of once per
/// read, which is how a cache hit can outrun a bare `GET` of the same value.
///
/// Freshness stays a server-clock decision. While the ``ServerClock`` has a usable sample, a read
/// or batch is a bare `GET` / `MGET`, and each caller takes the time *after* its reply reached it,
/// so the server-clock upper bound it computes is at least as late as the one a single `GET` would
/// give. Without one (none yet, an old one, or a loaded machine whose round trips exceed the
/// clock's bound), the read or batch carries `TIME` in front (`TIME` + `GET` or `TIME` + `MGET` in
/// one write): every caller in it gets that reply's server time, read before its value, and the
/// reply becomes the clock's next sample. So batching never switches off for lack of a clock.
///
/// Only for a standalone server (on a cluster the keys of a batch live on different nodes). A
/// cancelled caller leaves at once with ``RedisError/Code/cancelled`` (its key may still be read
/// for nobody); a batch is bounded by the command timeout.
package final class ReadBatcher: ReplyFollowUp {
    /// Most keys in one `MGET`.
    package static let maximumBatch = 128

    /// A caller waiting for its read.
    private struct Waiter {
        var key: String
        var continuation: CheckedContinuation<BatchedRead, any Error>
    }

    /// Reads leaving together: the callers, in order, and the distinct keys sent for them.
    private struct Batch: Sendable {
        var ids: [UInt64]
        var keys: [String]
        /// `keys` index of each caller's key.
        var positions: [Int]
    }

    private struct State {
        /// Reads or batches out at Redis now (at most `limit`).
        var inFlight = 0
        /// Callers not yet answered, by id (queued, or in a batch that is out).
        var waiting: [UInt64: Waiter] = [:]
        /// Ids of the callers not yet sent, in arrival order.
        var queue = CircularBuffer<UInt64>()
        /// Reads sent inside a batch of several callers, such batches, and the distinct keys they
        /// read (metrics and tests).
        var batchedReads = 0
        var batches = 0
        var batchedKeys = 0

        /// Takes up to ``ReadBatcher/maximumBatch`` queued callers as one batch, each distinct key once.
        mutating func takeBatch() -> Batch? {
            guard !queue.isEmpty else { return nil }
            let count = min(queue.count, ReadBatcher.maximumBatch)
            var batch = Batch(ids: [], keys: [], positions: [])
            batch.ids.reserveCapacity(count)
            batch.positions.reserveCapacity(count)
            if count == 1 {
                let id = queue.removeFirst()
                batch.ids = [id]
                batch.keys = [waiting[id]?.key ?? ""]
                batch.positions = [0]
                return batch
            }
            var index: [String: Int] = [:]
            index.reserveCapacity(count)
            for _ in 0..<count {
                let id = queue.removeFirst()
                guard let key = waiting[id]?.key else { continue }
                batch.ids.append(id)
                if let known = index[key] {
                    batch.positions.append(known)
                } else {
                    index[key] = batch.keys.count
                    batch.positions.append(batch.keys.count)
                    batch.keys.append(key)
                }
            }
            return batch
        }
    }

    private let redis: RedisClient
    /// Decides whether a read needs `TIME` in front; `nil`: never (plain reads).
    private let clock: ServerClock?
    private let limit: Int
    private let state = Mutex(State())
    private let nextID = Atomic<UInt64>(0)
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

    /// Reads and batches sent so far: `(reads that left in a batch of several, such batches)`.
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

    /// Reads or batches out at Redis right now (tests synchronise on it).
    package var outstandingCount: Int {
        state.withLock { $0.inFlight }
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
    /// - Parameter encoded: `GET <key>` already encoded, sent as is when the read leaves alone.
    package func get(_ key: String, encoded: ByteBuffer? = nil) async throws(RedisError) -> BatchedRead {
        if Task.isCancelled { throw Self.cancelled }
        let alone = state.withLock { state -> Bool in
            guard state.inFlight < limit, state.queue.isEmpty else { return false }
            state.inFlight += 1
            return true
        }
        if alone { return try await readAlone(key, encoded: encoded) }
        let id = nextID.add(1, ordering: .relaxed).newValue
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<BatchedRead, any Error>) in
                    let batch = state.withLock { state -> Batch? in
                        state.waiting[id] = Waiter(key: key, continuation: continuation)
                        state.queue.append(id)
                        guard state.inFlight < limit else { return nil }
                        state.inFlight += 1
                        return state.takeBatch()
                    }
                    if let batch { send(batch) }
                }
            } onCancel: {
                let waiter = state.withLock { state -> Waiter? in
                    guard let waiter = state.waiting.removeValue(forKey: id) else { return nil }
                    if let queued = state.queue.firstIndex(of: id) { state.queue.remove(at: queued) }
                    return waiter
                }
                waiter?.continuation.resume(throwing: Self.cancelled)
            }
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(code: .connection, message: "a batched read failed: \(error)")
        }
    }

    /// A read that found a slot free and nobody queued (its slot is already counted): a plain
    /// `GET` (`TIME` + `GET` without a usable clock sample; `encoded` when given and no `TIME` is
    /// needed) sent like any command, with none of a
    /// batch's bookkeeping. The slot is freed on the event loop the moment the reply (or failure,
    /// or this caller's cancellation) is delivered, by ``replyDelivered()``: reads that queued
    /// behind it leave from there, without waiting for this caller's task to run.
    private func readAlone(_ key: String, encoded: ByteBuffer?) async throws(RedisError) -> BatchedRead {
        let timed = needsTime()
        if !timed, let encoded {
            return BatchedRead(value: try await redis.send(encoded: encoded, timeout: nil, replies: 1, followUp: self), serverMillis: nil)
        }
        let size = RESPEncoder.encodedSize("GET", argumentBytes: key.utf8.count) + (timed ? FastReadCommands.time.readableBytes : 0)
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        if timed { buffer.writeImmutableBuffer(FastReadCommands.time) }
        RESPEncoder.write("GET", key, into: &buffer)
        guard timed else { return BatchedRead(value: try await redis.send(encoded: buffer, timeout: nil, replies: 1, followUp: self), serverMillis: nil) }
        let sent = ContinuousClock.now
        let (value, serverMillis) = try readTimed(try await redis.send(encoded: buffer, timeout: nil, replies: 2, followUp: self), sent: sent)
        if case .error(let message) = value { throw RedisError(code: .server, message: message) }
        return BatchedRead(value: value, serverMillis: serverMillis)
    }

    /// Splits the replies of `TIME` and a read sent together at `sent`: the read's reply and the
    /// server's time (ms), which becomes the clock's next sample.
    /// - Throws: ``RedisError/Code/protocolError`` unless `reply` is two replies, the first a valid `TIME`.
    private func readTimed(_ reply: RESPValue, sent: ContinuousClock.Instant) throws(RedisError) -> (RESPValue, Int64) {
        guard case .array(let both) = reply, both.count == 2 else {
            throw RedisError(code: .protocolError, message: "expected the replies of TIME and a read, got \(reply)")
        }
        let received = ContinuousClock.now
        let serverMillis = try FastRead.millis(time: both[0])
        clock?.record(serverMillis: serverMillis, sent: sent, received: received)
        return (both[1], serverMillis)
    }

    /// A lone read's reply, failure or cancellation was delivered: its slot goes to the queue.
    package func replyDelivered() {
        releaseSlot()
    }

    private static let cancelled = RedisError(code: .cancelled, message: "the task was cancelled while its read was out; the read may still run on the server")

    /// Sends `batch` (its slot is already counted): `GET` of one key or `MGET` of several, with
    /// `TIME` in front when the clock has no usable sample.
    private func send(_ batch: Batch) {
        let timed = needsTime()
        var buffer = ByteBuffer()
        if timed { buffer.writeImmutableBuffer(FastReadCommands.time) }
        RESPEncoder.write(batch.keys.count == 1 ? "GET" : "MGET", batch.keys, into: &buffer)
        let sent = ContinuousClock.now
        redis.send(encoded: buffer, replies: timed ? 2 : 1) { [self] result in
            completed(batch, result: result, timed: timed, sent: sent)
        }
    }

    /// A batch's reply came back (on the event loop): send the queue as the next batch in the
    /// same slot, then answer this batch's callers.
    private func completed(_ batch: Batch, result: Result<RESPValue, RedisError>, timed: Bool, sent: ContinuousClock.Instant) {
        let answers = answers(for: batch, result: result, timed: timed, sent: sent)
        let (waiters, next) = state.withLock { state -> ([Waiter?], Batch?) in
            if case .success = answers, batch.ids.count > 1 {
                state.batchedReads += batch.ids.count
                state.batches += 1
                state.batchedKeys += batch.keys.count
            }
            let waiters = batch.ids.map { state.waiting.removeValue(forKey: $0) }
            let next = state.takeBatch()
            if next == nil { state.inFlight -= 1 }
            return (waiters, next)
        }
        if let next { send(next) }
        switch answers {
        case .success(let (values, millis)):
            if batch.ids.count > 1 {
                counters?.reads.increment(by: batch.ids.count)
                counters?.batches.increment()
            }
            for (waiter, position) in zip(waiters, batch.positions) {
                waiter?.continuation.resume(returning: BatchedRead(value: values[position], serverMillis: millis))
            }
        case .failure(let error):
            for waiter in waiters { waiter?.continuation.resume(throwing: error) }
        }
    }

    /// The value for each of `batch`'s keys, and the server's time if `TIME` went in front
    /// (recorded as the clock's sample).
    private func answers(
        for batch: Batch, result: Result<RESPValue, RedisError>, timed: Bool, sent: ContinuousClock.Instant
    ) -> Result<([RESPValue], Int64?), RedisError> {
        do throws(RedisError) {
            var reply = try result.get()
            var millis: Int64?
            if timed { (reply, millis) = try readTimed(reply, sent: sent) }
            if case .error(let message) = reply { throw RedisError(code: .server, message: message) }
            if batch.keys.count == 1 { return .success(([reply], millis)) }
            guard let values = reply.array, values.count == batch.keys.count else {
                throw RedisError(code: .protocolError, message: "MGET of \(batch.keys.count) keys answered \(reply)")
            }
            return .success((values, millis))
        } catch {
            return .failure(error)
        }
    }

    /// Whether a read sent now needs `TIME` in front: the clock has no usable sample.
    private func needsTime() -> Bool {
        guard let clock else { return false }
        return clock.upperBound(at: .now) == nil
    }

    /// Gives a finished slot to the queue (it leaves as the next batch), or frees it.
    private func releaseSlot() {
        let batch = state.withLock { state -> Batch? in
            let batch = state.takeBatch()
            if batch == nil { state.inFlight -= 1 }
            return batch
        }
        if let batch { send(batch) }
    }
}
