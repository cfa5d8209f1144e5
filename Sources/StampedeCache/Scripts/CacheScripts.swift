package import RedisClient

/// The cache's Lua scripts (embedded from `LuaScripts/` at build time) and typed calls to them.
package enum CacheScripts {
    package static let getOrLock = script("get_or_lock")
    package static let commit = script("commit")
    package static let release = script("release")
    package static let invalidateKey = script("invalidate_key")
    package static let hotTouch = script("hot_touch")
    package static let handoff = script("handoff")
    package static let all = [getOrLock, commit, release, invalidateKey, hotTouch, handoff]

    private static func script(_ name: String) -> RedisScript {
        guard let source = EmbeddedLuaScripts.sources[name] else {
            preconditionFailure("LuaScripts/\(name).lua was not embedded at build time")
        }
        return RedisScript(name: name, source: source)
    }
}
