import NIOCore

/// Cluster mode: every command goes to the primary of its keys' hash slot.
extension RedisClient {
    /// One command, routed by its keys. Multi-key `DEL`/`UNLINK`/`EXISTS`/`TOUCH` across slots are
    /// split per slot and answered with the sum; any other command whose keys span slots fails with
    /// ``RedisError/Code/crossSlot`` before anything is sent.
    func clusterSend(_ command: RedisCommand, timeout: Duration?) async throws(RedisError) -> RESPValue {
        let start = ContinuousClock.now
        metrics.commands.increment()
        do throws(RedisError) {
            let reply = try await clusterRouted(command, timeout: timeout)
            metrics.duration.recordNanoseconds((ContinuousClock.now - start).nanosecondsClamped)
            return reply
        } catch {
            metrics.recordError(error.code)
            throw error
        }
    }

    private func clusterRouted(_ command: RedisCommand, timeout: Duration?) async throws(RedisError) -> RESPValue {
        guard !closed.load(ordering: .relaxed) else { throw RedisError(code: .shutdown, message: "the client was closed") }
        switch CommandRouting.route(command) {
        case .slot(let slot):
            return try await single(command, slot: slot, timeout: timeout)
        case .anyPrimary:
            return try await single(command, slot: nil, timeout: timeout)
        case .crossSlot(let slots):
            let name = command.name
            guard CommandRouting.summableMultiKey.contains(name), let keys = CommandRouting.keys(of: command) else {
                throw CommandRouting.crossSlotError(command, slots: slots)
            }
            var bySlot: [Int: [RedisArgument]] = [:]
            for key in keys { bySlot[HashSlot.of(key), default: []].append(RedisArgument(bytes: key)) }
            let parts = bySlot.values.map { RedisCommand(name, $0) }
            let replies = try await concurrently(parts) { (part) throws(RedisError) -> RESPValue in
                try await self.clusterRouted(part, timeout: timeout)
            }
            var total: Int64 = 0
            for reply in replies {
                guard let count = reply.int else { throw RedisError(code: .protocolError, message: "\(name) answered \(reply)") }
                total += count
            }
            return .integer(total)
        }
    }

    private func single(_ command: RedisCommand, slot: Int?, timeout: Duration?) async throws(RedisError) -> RESPValue {
        let encoded = RESPEncoder.encode(command)
        let (_, reply) = try await router.send(prefix: nil, prefixReplies: 0, command: encoded, slot: slot, timeout: TimeAmount(timeout ?? configuration.commandTimeout))
        if case .error(let message) = reply { throw Self.serverError(message) }
        return reply
    }

    /// An error reply as thrown: `CROSSSLOT` (a command the routing table does not know) as
    /// ``RedisError/Code/crossSlot`` with the server's words kept, anything else as `.server` verbatim.
    private static func serverError(_ message: String) -> RedisError {
        if message.hasPrefix("CROSSSLOT") {
            return RedisError(code: .crossSlot, message: "\(message) (on Redis Cluster one command's keys must share a hash slot: give them a common hash tag, e.g. user:{42}:a and user:{42}:b)")
        }
        return RedisError(code: .server, message: message)
    }

    /// A pre-encoded read (`TIME`) and a command, in one write to the command's primary.
    func clusterSend(preEncoded first: ByteBuffer, then second: RedisCommand, timeout: Duration?) async throws(RedisError) -> (RESPValue, RESPValue) {
        metrics.commands.increment()
        let slot: Int?
        switch CommandRouting.route(second) {
        case .slot(let found): slot = found
        case .anyPrimary: slot = nil
        case .crossSlot(let slots): throw CommandRouting.crossSlotError(second, slots: slots)
        }
        let encoded = RESPEncoder.encode(second)
        do throws(RedisError) {
            let (prefix, reply) = try await router.send(prefix: first, prefixReplies: 1, command: encoded, slot: slot, timeout: TimeAmount(timeout ?? configuration.commandTimeout))
            return (prefix[0], reply)
        } catch {
            metrics.recordError(error.code)
            throw error
        }
    }

    /// A pipeline on a cluster: the commands are grouped by primary and each group is sent as one
    /// pipeline (the groups concurrently); replies come back in the caller's order. A reply that is
    /// a redirect is retried alone where it points (it did not run). Error replies stay in place.
    func clusterPipeline(_ commands: [RedisCommand], timeout: Duration?) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { throw RedisError(code: .configuration, message: "a pipeline needs at least one command") }
        metrics.commands.increment(by: Int64(commands.count))
        var results = [RESPValue?](repeating: nil, count: commands.count)
        var groups: [RedisConfiguration.Endpoint: [Int]] = [:]
        var alone: [Int] = []
        for (index, command) in commands.enumerated() {
            switch CommandRouting.route(command) {
            case .slot(let slot): groups[try await router.endpoint(forSlot: slot), default: []].append(index)
            case .anyPrimary: groups[try await router.endpoint(forSlot: nil), default: []].append(index)
            case .crossSlot: alone.append(index)
            }
        }
        let commandTimeout = TimeAmount(timeout ?? configuration.commandTimeout)
        let batches = groups.map { (endpoint: $0.key, indexes: $0.value) }
        let replies = try await concurrently(batches) { (batch) throws(RedisError) -> [RESPValue] in
            let connection = try await self.router.connection(to: batch.endpoint)
            let encoded = RESPEncoder.encode(pipeline: batch.indexes.map { commands[$0] })
            do throws(RedisError) {
                let reply = try await connection.send(encoded: encoded, timeout: commandTimeout, replies: batch.indexes.count)
                return batch.indexes.count == 1 ? [reply] : (reply.array ?? [reply])
            } catch where error.code == .server && batch.indexes.count == 1 {
                return [.error(error.message)]
            } catch {
                if error.code == .connection || error.code == .timeout { self.router.requestRefresh() }
                throw error
            }
        }
        for (batch, batchReplies) in zip(batches, replies) {
            guard batchReplies.count == batch.indexes.count else {
                throw RedisError(code: .protocolError, message: "a pipeline of \(batch.indexes.count) to \(batch.endpoint) got \(batchReplies.count) replies")
            }
            for (index, reply) in zip(batch.indexes, batchReplies) {
                if case .error(let message) = reply, message.hasPrefix("TRYAGAIN") {
                    alone.append(index)
                } else if case .error(let message) = reply, let redirect = ClusterRedirect(errorMessage: message) {
                    if case .moved(let slot, let to) = redirect { router.moved(slot: slot, to: to) }
                    alone.append(index)
                } else {
                    results[index] = reply
                }
            }
        }
        for index in alone.sorted() {
            do throws(RedisError) {
                results[index] = try await clusterRouted(commands[index], timeout: timeout)
            } catch where error.code == .server || error.code == .crossSlot {
                results[index] = .error(error.message)
            }
        }
        return results.map { $0 ?? .null }
    }

    /// Sends `command` to every primary (standalone: the one server) and returns their replies in
    /// the order of the cluster map. For server-wide commands: `SCRIPT LOAD`, `SCRIPT FLUSH`,
    /// `CONFIG SET`, `FLUSHALL`, `INFO`, `CLIENT KILL`, `DBSIZE`.
    ///
    /// - Throws: the first error (an error reply as ``RedisError/Code/server``, verbatim).
    public func sendToEveryPrimary(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        guard try await isCluster() else { return [try await send(command, timeout: timeout)] }
        let primaries = try await router.primaries()
        return try await concurrently(primaries) { (endpoint) throws(RedisError) -> RESPValue in
            try await self.send(command, to: endpoint, timeout: timeout)
        }
    }

    /// Sends `command` to one node of the cluster (no routing, no redirects).
    func send(_ command: RedisCommand, to endpoint: RedisConfiguration.Endpoint, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        let connection = try await router.connection(to: endpoint)
        return try await connection.send(command, timeout: timeout ?? configuration.commandTimeout)
    }

    /// The primaries of the cluster (through Sentinel: the primary it names; standalone: the
    /// configured endpoint).
    public func primaries() async throws(RedisError) -> [RedisConfiguration.Endpoint] {
        if let sentinel { return [try await sentinel.primary()] }
        guard try await isCluster() else { return [configuration.endpoint] }
        return try await router.primaries()
    }

    /// Runs `body` for every element concurrently; returns the results in order, or throws the
    /// first error (after every task ended).
    func concurrently<Element: Sendable, Result: Sendable>(
        _ elements: [Element], _ body: @escaping @Sendable (Element) async throws(RedisError) -> Result
    ) async throws(RedisError) -> [Result] {
        if elements.count == 1 { return [try await body(elements[0])] }
        let outcomes = await withTaskGroup(of: (Int, Swift.Result<Result, RedisError>).self) { group in
            for (index, element) in elements.enumerated() {
                group.addTask {
                    do throws(RedisError) { return (index, .success(try await body(element))) } catch { return (index, .failure(error)) }
                }
            }
            var outcomes = [Swift.Result<Result, RedisError>?](repeating: nil, count: elements.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        var results: [Result] = []
        results.reserveCapacity(elements.count)
        for outcome in outcomes {
            switch outcome {
            case .success(let value): results.append(value)
            case .failure(let error): throw error
            case nil: throw RedisError(code: .cancelled, message: "a concurrent part did not finish")
            }
        }
        return results
    }
}
