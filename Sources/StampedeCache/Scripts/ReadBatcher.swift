import NIOCore
package import RedisClient
package import Metrics
import Synchronization

/// Batches concurrent fresh-hit reads into one `MGET` (automatic pipelining of reads).
///
/// Up to `limit` reads (the client's pool size) go to Redis on their own, as plain `GET`s, so a
/// lone caller never waits for anyone. While all of them are out, further reads queue; when one
/// comes back, the queue (up to ``maximumBatch`` keys) leaves as a single `MGET`, sent by the
/// first caller in it, which hands every other caller its own reply. Under concurrency the cost of
/// a command (encoding, the hops to and from the event loop, the promise) is paid once per batch
/// instead of once per read, which is how a cache hit can outrun a bare `GET` of the same value.
///
/// Freshness is unchanged: each caller takes the time *after* its reply reached it, so the
/// server-clock upper bound it computes is at least as late as the one a single `GET` would give.
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
        case value(RESPValue)
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
        /// Reads sent inside a batch, and batches sent (metrics and tests).
        var batchedReads = 0
        var batches = 0
    }

    private let redis: RedisClient
    private let limit: Int
    private let state = Mutex(State())
    /// `stampede_cache_batched_reads_total` and `stampede_cache_read_batches_total`, if counted.
    private let counters: (reads: Counter, batches: Counter)?

    /// A batcher sending through `redis`, with at most `limit` reads or batches out at once,
    /// counting batched reads and batches in `counters`.
    package init(redis: RedisClient, limit: Int, counters: (reads: Counter, batches: Counter)? = nil) {
        self.redis = redis
        self.limit = max(1, limit)
        self.counters = counters
    }

    /// Reads and batches sent so far: `(reads that left in an MGET, MGETs sent)`.
    package var batchCounts: (reads: Int, batches: Int) {
        state.withLock { ($0.batchedReads, $0.batches) }
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

    /// The `GET` reply for `key`, possibly fetched together with other callers' keys.
    package func get(_ key: String) async throws(RedisError) -> RESPValue {
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
    private func sendAlone(_ key: String) async throws(RedisError) -> RESPValue {
        defer { releaseSlot() }
        return try await redis.send(RedisCommand("GET", RedisArgument(key)))
    }

    /// Sends `batch` (this caller first) as one `MGET` and hands out the replies.
    private func lead(_ batch: [Member]) async throws(RedisError) -> RESPValue {
        defer { releaseSlot() }
        let replies: [RESPValue]
        do throws(RedisError) {
            if batch.count == 1 {
                replies = [try await redis.send(RedisCommand("GET", RedisArgument(batch[0].key)))]
            } else {
                let reply = try await redis.send(RedisCommand("MGET", batch.map { RedisArgument($0.key) }))
                guard let values = reply.array, values.count == batch.count else {
                    throw RedisError(code: .protocolError, message: "MGET of \(batch.count) keys answered \(reply)")
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
        }
        counters?.reads.increment(by: batch.count)
        counters?.batches.increment()
        for (member, reply) in zip(batch, replies).dropFirst() { member.continuation.resume(returning: .value(reply)) }
        return replies[0]
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
