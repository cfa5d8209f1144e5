import RedisClient

extension StampedeCache {
    /// The namespace generation to build keys with.
    ///
    /// The first call reads it from Redis. Afterwards the background loop (``run()``) re-reads it
    /// every second and `gen|N` notices update it at once; without a running loop, a call finding
    /// it older than a second re-reads it inline (one caller at a time). While the loop runs, a
    /// request only looks at the value's age past ``loopGenerationMaxAge``: the loop's refresh comes
    /// a little after each second (its ticks also flush hits), and every request in that window
    /// would otherwise contend to claim a refresh that is the loop's to do.
    func currentGeneration() async -> Int64 {
        let maxAge = lifecycle.backgroundRunning ? Self.loopGenerationMaxAge : Self.generationRefreshInterval
        let (value, state) = generation.read(maxAge: maxAge)
        switch state {
        case .neverRead:
            await refreshGeneration()
            return generation.read(maxAge: .seconds(3600)).value
        case .stale(claimed: let won) where won && !lifecycle.backgroundRunning:
            await refreshGeneration()
            return generation.read(maxAge: .seconds(3600)).value
        case .stale(claimed: let won):
            if won { generation.refreshFailed() }  // the loop refreshes it; release the claim
            return value
        case .current:
            return value
        }
    }

    /// The generation when it needs no refresh (the request path's common case, without the
    /// suspension point of ``currentGeneration()``); `nil` otherwise.
    func generationIfCurrent(now: NearInstant = .now) -> Int64? {
        let maxAge = lifecycle.backgroundRunning ? Self.loopGenerationMaxAgeNanoseconds : Self.generationRefreshIntervalNanoseconds
        return generation.currentValue(maxAgeNanoseconds: maxAge, now: now)
    }

    /// Re-reads the generation from Redis (a failure keeps the value in use).
    func refreshGeneration() async {
        diagnosticsBox.update { $0.generationReads += 1 }
        do {
            let reply = try await redis.send("GET", RedisArgument(keySpace.generationKey))
            generation.observe(reply.int ?? 0)
        } catch {
            generation.refreshFailed()
        }
    }
}

extension StampedeCache {
    /// The namespace generation keys are built with now (layers that keep their own documents per
    /// generation, such as the semantic index, scope them by it).
    package func generationForKeys() async -> Int64 { await currentGeneration() }
}
