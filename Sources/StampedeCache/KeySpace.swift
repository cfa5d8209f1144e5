import RedisClient

/// Names every Redis key and channel of one namespace.
///
/// Entry keys: `stampede:{<namespace>:<generation>:<key>}:v|l|f|h` — the braces are a Redis
/// Cluster hash tag, so all keys of one entry live in one slot and the scripts stay cluster-valid.
/// The caller's key is escaped (`%`, `{`, `}`, `|` → `%XX`) so it can never break the tag or
/// the notice format.
package struct KeySpace: Sendable {
    package static let prefix = "stampede:"
    package let namespace: String

    package init(namespace: String) throws(CacheConfigurationError) {
        guard !namespace.isEmpty, namespace.utf8.count <= 64,
              namespace.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else {
            throw CacheConfigurationError(setting: "namespace", problem: "'\(namespace)' must be 1-64 characters of A-Z a-z 0-9 - _ .")
        }
        self.namespace = namespace
    }

    /// The namespace's shard channel: generation notices, and on one server every notice.
    package var channel: String { "\(Self.prefix)notify:\(namespace)" }

    /// The shard channel for notices about `entry`: on one server the namespace channel; on a
    /// cluster the namespace's channel for the entry's slot, `stampede:notify:<namespace>:{<tag>}`
    /// (a script may only `SPUBLISH` in its own slot).
    package func noticeChannel(for entry: EntryKeys, cluster: Bool) -> String {
        guard cluster else { return channel }
        return "\(channel):{\(SlotTag.tag(forSlot: HashSlot.of(entry.value)))}"
    }
    /// The key holding the namespace generation (bumped to invalidate everything).
    package var generationKey: String { "\(Self.prefix)gen:{\(namespace)}" }

    package func tagKey(_ tag: String) -> String { "\(Self.prefix)tag:{\(namespace)}:\(Self.escape(tag))" }

    package func entry(_ key: String, generation: Int64) throws(CacheError) -> EntryKeys {
        guard !key.isEmpty else { throw CacheError.invalidKey(key, reason: "the key is empty") }
        guard key.utf8.count <= 1024 else { throw CacheError.invalidKey(key, reason: "the key is \(key.utf8.count) bytes; the limit is 1024 (hash long keys)") }
        let escaped = Self.escape(key)
        // Built by appending into one reserved buffer (on every request; interpolation measured slower).
        let digits = String(generation)
        var id = ""
        id.reserveCapacity(namespace.utf8.count + digits.utf8.count + escaped.utf8.count + 2)
        id.append(namespace)
        id.append(":")
        id.append(digits)
        id.append(":")
        id.append(escaped)
        return EntryKeys(id: id)
    }

    package static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") || $0 == UInt8(ascii: "|") }) else {
            return text
        }
        var result = ""
        for character in text {
            switch character {
            case "%": result += "%25"
            case "{": result += "%7B"
            case "}": result += "%7D"
            case "|": result += "%7C"
            default: result.append(character)
            }
        }
        return result
    }
}

/// The keys of one entry (value, lock, fence, hot counter, hand-off), all in the hash tag `{id}`.
package struct EntryKeys: Sendable, Hashable {
    /// The entry id `E`: `<namespace>:<generation>:<escaped key>`; also used in notices.
    package let id: String
    /// The value key, built once (it is on every read).
    package let value: String

    package init(id: String) {
        self.id = id
        var value = KeySpace.prefix
        value.reserveCapacity(KeySpace.prefix.utf8.count + id.utf8.count + 4)
        value.append("{")
        value.append(id)
        value.append("}:v")
        self.value = value
    }

    package var lock: String { "\(KeySpace.prefix){\(id)}:l" }
    package var fence: String { "\(KeySpace.prefix){\(id)}:f" }
    package var hot: String { "\(KeySpace.prefix){\(id)}:h" }
    /// A value computed but not stored, handed to the followers waiting at that moment (seconds).
    package var handoff: String { "\(KeySpace.prefix){\(id)}:d" }
    /// The partial output of the computation holding fence `token`, as a Redis Stream its
    /// followers read while it runs. Named after the token, so a zombie's stream is never the one
    /// a newer computation's followers read.
    package func liveStream(token: Int64) -> String { "\(KeySpace.prefix){\(id)}:s:\(token)" }
}
