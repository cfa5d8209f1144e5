import Glibc
import NIOCore
import RedisClient
import RedisServerProcess
import RedisTestSupport
@testable import StampedeCache
import Testing

/// Concurrent fresh reads leave together in one `MGET` when every slot is out, and each caller
/// gets its own reply; a lone read is a plain `GET` that waits for nobody.
@Suite("read batching: concurrent fresh reads share one MGET", .sharedRedis)
struct ReadBatcherTests {
    @Test("10 reads queued behind a busy slot leave as one MGET of 10 keys, each caller getting its own key's value (a missing key reads as null)")
    func queuedReadsLeaveInOneMGET() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let prefix = "rb:\(uniqueNamespace())"
        for index in 0..<9 { _ = try await client.send("SET", RedisArgument("\(prefix):\(index)"), RedisArgument("value \(index)")) }
        let batcher = ReadBatcher(redis: client, limit: 1)
        // The reads are sent once the slot is given back, so they run in tasks of their own.
        let reads = try await batcher.withSlotTaken {
            let reads = (0..<10).map { index in Task { try await batcher.get("\(prefix):\(index)") } }
            try await eventually("10 reads queued behind the busy slot") { batcher.queuedCount == 10 }
            return reads
        }
        var values: [Int: RESPValue] = [:]
        for (index, read) in reads.enumerated() {
            let answer = try await read.value
            #expect(answer.serverMillis == nil, "no clock: no TIME")
            values[index] = answer.value
        }
        #expect(values.count == 10)
        for index in 0..<9 { #expect(values[index]?.string == "value \(index)", "key \(index)") }
        #expect(values[9] == .null)
        #expect(batcher.batchCounts.reads == 10)
        #expect(batcher.batchCounts.batches == 1)
        #expect(batcher.queuedCount == 0)
        await client.close()
    }

    @Test("6 queued reads of 3 distinct keys (a a b a b c) leave as one MGET of 3 keys; each caller gets its own key's value")
    func aBatchReadsEachDistinctKeyOnce() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let prefix = "rb:\(uniqueNamespace())"
        for name in ["a", "b", "c"] { _ = try await client.send("SET", RedisArgument("\(prefix):\(name)"), RedisArgument("value \(name)")) }
        let batcher = ReadBatcher(redis: client, limit: 1)
        let names = ["a", "a", "b", "a", "b", "c"]
        let reads = try await batcher.withSlotTaken {
            var reads: [Task<BatchedRead, any Error>] = []
            // One at a time, so the queue holds them in this order.
            for (position, name) in names.enumerated() {
                reads.append(Task { try await batcher.get("\(prefix):\(name)") })
                try await eventually("read \(position) queued") { batcher.queuedCount == position + 1 }
            }
            return reads
        }
        for (name, read) in zip(names, reads) { #expect(try await read.value.value.string == "value \(name)") }
        #expect(batcher.batchCounts.reads == 6)
        #expect(batcher.batchCounts.batches == 1)
        #expect(batcher.batchedKeyCount == 3)
        await client.close()
    }

    @Test("one read at a time is a plain GET each (no batch, no wait), and 130 queued reads leave as batches of at most 128")
    func loneReadsAreGETsAndBatchesAreBounded() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let key = "rb:\(uniqueNamespace())"
        _ = try await client.send("SET", RedisArgument(key), "v")
        let batcher = ReadBatcher(redis: client, limit: 1)
        for _ in 0..<3 { #expect(try await batcher.get(key).value.string == "v") }
        #expect(batcher.batchCounts.batches == 0)
        let reads = try await batcher.withSlotTaken {
            let reads = (0..<130).map { _ in Task { try await batcher.get(key).value.string } }
            try await eventually("130 reads queued behind the busy slot") { batcher.queuedCount == 130 }
            return reads
        }
        var answers = 0
        for read in reads where try await read.value == "v" { answers += 1 }
        #expect(answers == 130)
        #expect(batcher.batchCounts.reads == 130)
        #expect(batcher.batchCounts.batches == 2, "128 + 2")
        await client.close()
    }

    @Test("when the batch's MGET fails, every caller queued in it gets the error (the client was closed meanwhile)")
    func aFailedBatchFailsEveryCallerInIt() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let batcher = ReadBatcher(redis: client, limit: 1)
        let reads = try await batcher.withSlotTaken {
            let reads = (0..<5).map { index in Task { try await batcher.get("rb:closed:\(index)") } }
            try await eventually("5 reads queued behind the busy slot") { batcher.queuedCount == 5 }
            await client.close()
            return reads
        }
        var failures = 0
        for read in reads {
            do { _ = try await read.value } catch is RedisError { failures += 1 }
        }
        #expect(failures == 5)
        #expect(batcher.batchCounts.batches == 0)
        #expect(batcher.queuedCount == 0)
    }

    @Test("without a usable sample of the server's clock, a lone read and a batch of 6 each carry TIME in front: every caller gets that server time, and the reply becomes the clock's sample")
    func readsWithoutAClockSampleCarryTIME() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let prefix = "rb:\(uniqueNamespace())"
        for index in 0..<6 { _ = try await client.send("SET", RedisArgument("\(prefix):\(index)"), RedisArgument("value \(index)")) }
        let clock = ServerClock()
        let batcher = ReadBatcher(redis: client, limit: 1, clock: clock)
        let before = try await serverMillis(client)
        let lone = try await batcher.get("\(prefix):0")
        #expect(lone.value.string == "value 0")
        let loneMillis = try #require(lone.serverMillis, "a lone read without a sample carries TIME")
        #expect(loneMillis >= before)
        // The lone read's TIME is now the sample (when its round trip was within the clock's
        // bound, which a loaded machine may exceed); forget it so the batch needs TIME too.
        clock.invalidate()
        let reads = try await batcher.withSlotTaken {
            let reads = (0..<6).map { index in Task { try await batcher.get("\(prefix):\(index)") } }
            try await eventually("6 reads queued behind the busy slot") { batcher.queuedCount == 6 }
            return reads
        }
        var millis: Set<Int64> = []
        for (index, read) in reads.enumerated() {
            let answer = try await read.value
            #expect(answer.value.string == "value \(index)")
            millis.insert(try #require(answer.serverMillis, "read \(index) of the batch got the batch's server time"))
        }
        #expect(millis.count == 1, "one TIME for the whole batch: \(millis)")
        #expect(millis.first.map { $0 >= loneMillis } == true)
        #expect(batcher.batchCounts.reads == 6)
        #expect(batcher.batchCounts.batches == 1)
        let after = try await serverMillis(client)
        #expect(millis.first.map { $0 <= after } == true)
        await client.close()
    }

    @Test("when a batch's reply arrives, the reads queued meanwhile have already left as the next batch before any caller of the first batch is answered (the event loop sends it)")
    func theNextBatchLeavesBeforeTheFinishedBatchIsAnswered() async throws {
        try await withOneSlotBatcherOnPrivateRedis(keys: 5) { server, batcher in
            // Batch A (k0 k1 k2) goes out to a frozen server; B (k3 k4) queues behind it.
            let first = try await batcher.withSlotTaken {
                let reads = (0..<3).map { index in
                    Task { () async throws -> (String?, Int) in
                        let read = try await batcher.get("k\(index)")
                        // What the queue looks like the moment this caller is answered.
                        return (read.value.string, batcher.queuedCount)
                    }
                }
                try await eventually("batch A queued") { batcher.queuedCount == 3 }
                server.kill(signal: SIGSTOP)
                return reads
            }
            #expect(batcher.queuedCount == 0)
            #expect(batcher.outstandingCount == 1)
            let second = (3..<5).map { index in Task { try await batcher.get("k\(index)").value.string } }
            try await eventually("batch B queued behind A") { batcher.queuedCount == 2 }
            server.kill(signal: SIGCONT)
            for (index, read) in first.enumerated() {
                let (value, queued) = try await read.value
                #expect(value == "value \(index)")
                #expect(queued == 0, "caller \(index) of A was answered while B still waited in the queue")
            }
            for (offset, read) in second.enumerated() { #expect(try await read.value == "value \(offset + 3)") }
            #expect(batcher.batchCounts.batches == 2)
            try await eventually("every slot free") { batcher.outstandingCount == 0 }
        }
    }

    @Test("a caller cancelled while its batch is out at a frozen Redis leaves at once with .cancelled; the batch's other callers get their values once Redis answers")
    func aCancelledCallerLeavesWhileItsBatchIsOut() async throws {
        try await withOneSlotBatcherOnPrivateRedis(keys: 3) { server, batcher in
            let reads = try await batcher.withSlotTaken {
                let reads = (0..<3).map { index in Task { try await batcher.get("k\(index)").value.string } }
                try await eventually("3 reads queued") { batcher.queuedCount == 3 }
                server.kill(signal: SIGSTOP)
                return reads
            }
            #expect(batcher.outstandingCount == 1, "the batch is out at the frozen server")
            reads[1].cancel()
            do {
                _ = try await reads[1].value
                Issue.record("the cancelled read returned a value although Redis is frozen")
            } catch let error as RedisError {
                #expect(error.code == .cancelled)
            }
            #expect(batcher.outstandingCount == 1, "the caller left while its batch was still out")
            server.kill(signal: SIGCONT)
            #expect(try await reads[0].value == "value 0")
            #expect(try await reads[2].value == "value 2")
            try await eventually("the slot is free again") { batcher.outstandingCount == 0 }
        }
    }

    @Test("a lone read cancelled while out at a frozen Redis frees its slot at once: the next read leaves at once as a GET of its own instead of queueing behind the dead one")
    func aCancelledLoneReadFreesItsSlot() async throws {
        try await withOneSlotBatcherOnPrivateRedis(keys: 2) { server, batcher in
            server.kill(signal: SIGSTOP)
            let lone = Task { try await batcher.get("k0").value.string }
            try await eventually("the lone read is out") { batcher.outstandingCount == 1 }
            #expect(batcher.queuedCount == 0)
            lone.cancel()
            do {
                _ = try await lone.value
                Issue.record("the cancelled read returned a value although Redis is frozen")
            } catch let error as RedisError {
                #expect(error.code == .cancelled)
            }
            #expect(batcher.outstandingCount == 0, "the slot was freed before the caller was answered")
            let next = Task { try await batcher.get("k1").value.string }
            try await eventually("the next read is out") { batcher.outstandingCount == 1 }
            #expect(batcher.queuedCount == 0, "it left at once instead of queueing")
            server.kill(signal: SIGCONT)
            #expect(try await next.value == "value 1")
            #expect(batcher.batchCounts.batches == 0, "both reads went alone")
            try await eventually("every slot free") { batcher.outstandingCount == 0 }
        }
    }

    /// A one-slot batcher on a private redis-server holding `k0`... as `"value 0"`...; `body` may
    /// freeze the server (SIGSTOP): it is resumed (SIGCONT) however `body` ends.
    private func withOneSlotBatcherOnPrivateRedis(keys: Int, _ body: (RedisServerProcess, ReadBatcher) async throws -> Void) async throws {
        try await withPrivateRedis { server in
            let client = try makeClient(server.url, commandTimeout: .seconds(120))
            for index in 0..<keys { _ = try await client.send("SET", RedisArgument("k\(index)"), RedisArgument("value \(index)")) }
            do {
                try await body(server, ReadBatcher(redis: client, limit: 1))
            } catch {
                server.kill(signal: SIGCONT)
                await client.close()
                throw error
            }
            server.kill(signal: SIGCONT)
            await client.close()
        }
    }

    @Test("a cancelled caller still queued leaves the queue: the batch is sent without its key")
    func aCancelledQueuedCallerLeavesTheQueue() async throws {
        let client = try makeClient(try TestRedis.sharedURL)
        let prefix = "rb:\(uniqueNamespace())"
        for index in 0..<3 { _ = try await client.send("SET", RedisArgument("\(prefix):\(index)"), RedisArgument("value \(index)")) }
        let batcher = ReadBatcher(redis: client, limit: 1)
        let reads = try await batcher.withSlotTaken {
            var reads: [Task<String?, any Error>] = []
            for index in 0..<3 {
                reads.append(Task { try await batcher.get("\(prefix):\(index)").value.string })
                try await eventually("read \(index) queued") { batcher.queuedCount == index + 1 }
            }
            reads[0].cancel()
            try await eventually("the cancelled read left the queue") { batcher.queuedCount == 2 }
            return reads
        }
        await #expect(throws: RedisError.self) { try await reads[0].value }
        #expect(try await reads[1].value == "value 1")
        #expect(try await reads[2].value == "value 2")
        #expect(batcher.batchCounts.reads == 2)
        #expect(batcher.batchedKeyCount == 2)
        await client.close()
    }

    @Test("fresh hits of 10 keys queued behind a busy slot come back from one MGET, each its own value, as fresh hits by the server's clock")
    func cacheHitsLeaveInOneMGET() async throws {
        let worker = try await Worker.start(try TestRedis.sharedURL, namespace: uniqueNamespace(), policy: testPolicy())
        for index in 0..<10 {
            _ = try await worker.cache.value(for: "k\(index)") { Array("answer \(index)".utf8) }
            #expect(try await worker.cache.value(for: "k\(index)") { [] }.source == .freshHit)
        }
        let cache = worker.cache
        #expect(cache.reads.outstandingCount == 0, "each lone read's slot was free before its caller was answered")
        // No usable sample of the server's clock (as on a loaded machine, whose round trips exceed
        // the clock's bound): the batch carries TIME in front, and the hits are still batched.
        cache.serverClock.invalidate()
        let hits = try await cache.reads.withSlotTaken {
            let hits = (0..<10).map { index in Task { try await cache.value(for: "k\(index)") { [] } } }
            try await eventually("10 hits queued behind the busy slot") { cache.reads.queuedCount == 10 }
            return hits
        }
        for (index, hit) in hits.enumerated() {
            let result = try await hit.value
            #expect(text(result.value) == "answer \(index)")
            #expect(result.source == .freshHit)
        }
        #expect(cache.reads.batchCounts.reads == 10)
        #expect(cache.reads.batchCounts.batches == 1)
        await worker.stop()
    }
}
