import NIOCore
import RedisClient

extension StampedeCache {
    /// What a request found by reading its entry before anything else: the public reads take this
    /// look before they build the closure for a computation, so a fresh hit allocates no closure,
    /// enters no coalescer and pays for no span machinery. Whatever it read goes on to the flight,
    /// which does not read again.
    enum FirstLook {
        /// A fresh entry: the answer.
        case answered(Outcome)
        /// What the read found (or how it failed) when it was not a fresh entry.
        case read(FirstRead)
        /// No look was taken; the request takes the full path (``outcome(for:options:nearAsked:after:compute:)``)
        /// from the start: a near-cache, a forced refresh, a tracer recording, lookups currently
        /// going to `get_or_lock` first (``LookupHistory``), a generation to re-read, a value of
        /// this process waiting for its background commit, or a computation of this process
        /// under way for the key.
        case notTaken

        /// The read to start the flight from, if one was taken.
        var read: FirstRead? {
            if case .read(let read) = self { return read } else { return nil }
        }
    }

    /// A read taken by ``firstLook(for:options:)`` that found no fresh entry. Its hit is already
    /// counted for hot-key promotion.
    struct FirstRead {
        var generation: Int64
        var entry: EntryKeys
        var result: Result<FastRead, any Error>
    }

    /// Reads `key`'s entry (a plain `GET`, batched with concurrent reads) when nothing calls for
    /// the full path, and answers a fresh entry; see ``FirstLook``.
    /// - Throws: ``CacheError`` for a closed cache, invalid options or key; `CancellationError`.
    func firstLook(for key: String, options: CacheRequestOptions) async throws -> FirstLook {
        guard near == nil, !options.forceRefresh, lookups.readsFirst, !TracingState.isActive else { return .notTaken }
        try checkOpen()
        try options.validate()
        guard let generation = generationIfCurrent() else { return .notTaken }
        let (entry, encodedGet) = try recentKeys.names(for: key, generation: generation)
        if pendingCommits.value(for: entry.id) != nil || coalescer.isRunning(Self.flightKey(entry, options)) { return .notTaken }
        recordHit(entry)
        return try await readBeforeFlight(entry, key: key, generation: generation, encodedGet: encodedGet)
    }

    /// Reads `entry` before anything else (``fastRead(_:key:generation:encodedGet:)``): a fresh
    /// entry is the answer, counted as a fresh hit; anything else, or the read's failure, is what
    /// the flight starts from. Shared by the first look and by the full path when the first look
    /// was not taken. Never ``FirstLook/notTaken``.
    /// - Throws: `CancellationError` when the caller was cancelled during the read.
    @inline(__always)
    func readBeforeFlight(_ entry: EntryKeys, key: String, generation: Int64, encodedGet: ByteBuffer?) async throws -> FirstLook {
        let read: FastRead
        do {
            read = try await fastRead(entry, key: key, generation: generation, encodedGet: encodedGet)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            return .read(FirstRead(generation: generation, entry: entry, result: .failure(error)))
        }
        if case .entry(let stored) = read, stored.isFresh, !earlyRefreshDue(stored) {
            lookups.record(foundFresh: true)
            metrics.request(.freshHit)
            return .answered(Self.served(stored, .freshHit))
        }
        return .read(FirstRead(generation: generation, entry: entry, result: .success(read)))
    }

    /// The coalescer's key for a request on `entry`: requests whose options change what they may
    /// accept or do fly apart.
    static func flightKey(_ entry: EntryKeys, _ options: CacheRequestOptions) -> String {
        var flightKey = options.maxStale.map { "\(entry.id)#\($0.wholeMilliseconds)" } ?? entry.id
        if options.forceRefresh { flightKey += "#force" }
        if options.noStore { flightKey += "#nostore" }
        if let staleIfError = options.staleIfError { flightKey += "#sie\(staleIfError.wholeMilliseconds)" }
        return flightKey
    }
}
