public import RedisClient

/// A command the cache needs that the Redis user may not run, with the server's message verbatim.
public struct MissingPermission: Sendable, Hashable, CustomStringConvertible {
    /// What was tried, e.g. `SPUBLISH stampede:notify:llm`.
    public var command: String
    /// What the cache uses it for.
    public var neededFor: String
    /// The server's answer, verbatim (e.g. `NOPERM this user has no permissions to run the 'publish' command`).
    public var serverMessage: String

    /// `SPUBLISH …: <server message> (needed for …); grant it to the Redis user`.
    public var description: String { "\(command): \(serverMessage) (needed for \(neededFor)); grant it to the Redis user" }
}

extension StampedeCache {
    /// Tries, once each, the commands a cache over `namespace` needs — `TIME`, a read and a write of
    /// one of its keys, `EVALSHA` of its scripts on its keys, `SPUBLISH` on its notice channels (on a
    /// cluster also a slot channel, `stampede:notify:<namespace>:{…}`: grant `&stampede:notify:<namespace>*`)
    /// and, with `subscribe`, `SSUBSCRIBE` to them — and returns those the Redis user may not run.
    /// Nothing is left behind (the write probe lives 1 s). Connection failures are thrown, not listed.
    ///
    /// ``init(redis:namespace:policy:logger:)`` runs it (without `subscribe`, which the notice
    /// listener itself does) and logs each missing permission once; `stampede config check --ping` prints them.
    public static func missingPermissions(redis: RedisClient, namespace: String, subscribe: Bool = true) async throws(RedisError) -> [MissingPermission] {
        try await missingPermissions(redis: redis, namespace: namespace, subscribe: subscribe, loadScripts: true)
    }

    /// The check, optionally without `SCRIPT LOAD` (the cache's init has just loaded the scripts).
    static func missingPermissions(redis: RedisClient, namespace: String, subscribe: Bool, loadScripts: Bool) async throws(RedisError) -> [MissingPermission] {
        let keySpace: KeySpace
        do { keySpace = try KeySpace(namespace: namespace) } catch {
            throw RedisError(code: .configuration, message: error.description)
        }
        let probe = EntryKeys(id: "\(namespace):probe:permissions")
        var missing: [MissingPermission] = []
        func attempt(_ label: String, _ neededFor: String, _ command: RedisCommand) async throws(RedisError) {
            do {
                _ = try await redis.send(command)
            } catch where error.code == .server && (error.message.hasPrefix("NOPERM") || error.message.hasPrefix("NOAUTH") || error.message.contains("no permissions")) {
                missing.append(MissingPermission(command: label, neededFor: neededFor, serverMessage: error.message))
            } catch where error.code == .server {
                return  // allowed; the command itself refused the probe's arguments
            }
        }
        if loadScripts {
            do {
                try await redis.preload(CacheScripts.all)
            } catch where error.code == .server {
                missing.append(MissingPermission(command: "SCRIPT LOAD", neededFor: "loading the cache's Lua scripts", serverMessage: error.message))
            }
        }
        try await attempt("TIME", "deciding freshness on the server clock", RedisCommand("TIME"))
        try await attempt("GET \(probe.value)", "reading entries", RedisCommand("GET", RedisArgument(probe.value)))
        try await attempt("SET \(probe.lock)", "writing entries, locks and tags", RedisCommand("SET", RedisArgument(probe.lock), "probe", "PX", "1000"))
        try await attempt("DEL \(probe.lock)", "invalidation and repairs", RedisCommand("DEL", RedisArgument(probe.lock)))
        // Called with no ARGV, the script answers its own "expected 4 or 5 ARGV" error: proof it may run on these keys.
        try await attempt(
            "EVALSHA get_or_lock", "get-or-lock, commit and release",
            RedisCommand("EVALSHA", RedisArgument(CacheScripts.getOrLock.sha1), "3", RedisArgument(probe.value), RedisArgument(probe.lock), RedisArgument(probe.fence))
        )
        var channels = [keySpace.channel]
        let slotChannel = keySpace.noticeChannel(for: probe, cluster: try await redis.isCluster())
        if slotChannel != keySpace.channel { channels.append(slotChannel) }
        for channel in channels {
            try await attempt("SPUBLISH \(channel)", "waking followers in every process", RedisCommand("SPUBLISH", RedisArgument(channel), "probe|"))
        }
        if subscribe {
            // A client of its own, so the probe subscriptions end with it.
            let subscriber = try RedisClient(configuration: redis.configuration, logger: redis.logger)
            for channel in channels {
                do {
                    _ = try await subscriber.shardSubscriber.subscribe(to: [channel])
                } catch where error.code == .server {
                    missing.append(MissingPermission(command: "SSUBSCRIBE \(channel)", neededFor: "receiving completion notices (without it followers poll every followerRecheckInterval)", serverMessage: error.message))
                } catch {
                    await subscriber.close()
                    throw error
                }
            }
            await subscriber.close()
        }
        return missing
    }
}
