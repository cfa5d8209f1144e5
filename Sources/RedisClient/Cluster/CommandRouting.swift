/// Where a command goes on a Redis Cluster: found from the positions of its keys.
///
/// The table covers the commands the cache, the tools and most applications send. A command it
/// does not know goes to any primary; if its keys live elsewhere the server answers `MOVED` and the
/// client follows, so the table makes routing fast, not correct — redirection makes it correct.
package enum CommandRoute: Equatable, Sendable {
    /// The command names no key (or is unknown): any primary will do.
    case anyPrimary
    /// Every key is in this slot.
    case slot(Int)
    /// The keys span these slots (sorted, distinct): the command cannot run as one.
    case crossSlot([Int])
}

package enum CommandRouting {
    /// Key positions: the first key's argument index (0 = the first argument after the name), the
    /// last (-1 = the last argument, -2 = all but the last), and the step between keys.
    private struct KeySpec {
        var first: Int
        var last: Int
        var step: Int
    }

    private static let table: [String: KeySpec] = {
        var table: [String: KeySpec] = [:]
        let single = """
            GET SET SETNX SETEX PSETEX GETDEL GETEX GETSET GETRANGE SETRANGE APPEND STRLEN INCR INCRBY INCRBYFLOAT DECR DECRBY \
            EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME TTL PTTL PERSIST TYPE DUMP RESTORE \
            HGET HSET HSETNX HMSET HMGET HGETALL HDEL HINCRBY HINCRBYFLOAT HLEN HKEYS HVALS HEXISTS HSCAN HSTRLEN HRANDFIELD \
            SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SSCAN \
            ZADD ZREM ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZSCORE ZMSCORE ZCARD ZINCRBY ZREMRANGEBYSCORE \
            ZREMRANGEBYRANK ZCOUNT ZRANK ZREVRANK ZSCAN ZPOPMIN ZPOPMAX ZRANDMEMBER \
            LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LRANGE LLEN LTRIM LINDEX LSET LREM LINSERT LPOS \
            XADD XLEN XRANGE XREVRANGE XTRIM XDEL XACK XPENDING XCLAIM XAUTOCLAIM XSETID \
            BITCOUNT SETBIT GETBIT BITPOS PFADD SPUBLISH
            """
        for name in single.split(separator: " ") { table[String(name)] = KeySpec(first: 0, last: 0, step: 1) }
        for name in ["DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "WATCH", "SINTER", "SUNION", "SDIFF", "SINTERSTORE",
                     "SUNIONSTORE", "SDIFFSTORE", "PFCOUNT", "PFMERGE"] {
            table[name] = KeySpec(first: 0, last: -1, step: 1)
        }
        for name in ["MSET", "MSETNX"] { table[name] = KeySpec(first: 0, last: -1, step: 2) }
        for name in ["BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"] { table[name] = KeySpec(first: 0, last: -2, step: 1) }
        for name in ["RENAME", "RENAMENX", "COPY", "LMOVE", "BLMOVE", "SMOVE", "RPOPLPUSH", "BRPOPLPUSH"] {
            table[name] = KeySpec(first: 0, last: 1, step: 1)
        }
        // Container commands whose key follows a subcommand.
        for name in ["OBJECT", "MEMORY", "XGROUP", "XINFO"] { table[name] = KeySpec(first: 1, last: 1, step: 1) }
        return table
    }()

    /// Scripts and functions: `EVALSHA sha numkeys key… arg…`.
    private static let numkeysCommands: Set<String> = ["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"]

    /// Multi-key commands that the client may split per slot and answer with the sum of the parts.
    package static let summableMultiKey: Set<String> = ["DEL", "UNLINK", "EXISTS", "TOUCH"]

    /// The keys `command` names, or `nil` if the command is not in the table.
    package static func keys(of command: RedisCommand) -> [[UInt8]]? {
        let name = command.name
        let arguments = command.arguments
        if numkeysCommands.contains(name) {
            guard arguments.count >= 2, let count = Int(String(decoding: arguments[1], as: UTF8.self)), count >= 0,
                  arguments.count >= 2 + count else { return nil }
            return Array(arguments[2..<(2 + count)])
        }
        guard let spec = table[name] else { return nil }
        if name == "OBJECT" || name == "MEMORY" || name == "XGROUP" || name == "XINFO" {
            return arguments.count >= 2 ? [arguments[1]] : []
        }
        let last: Int
        switch spec.last {
        case -1: last = arguments.count - 1
        case -2: last = arguments.count - 2
        default: last = min(spec.last, arguments.count - 1)
        }
        guard spec.first <= last else { return [] }
        return stride(from: spec.first, through: last, by: spec.step).map { arguments[$0] }
    }

    /// Where `command` goes.
    package static func route(_ command: RedisCommand) -> CommandRoute {
        guard let keys = keys(of: command), let first = keys.first else { return .anyPrimary }
        let slot = HashSlot.of(first)
        if keys.count == 1 { return .slot(slot) }
        var slots: Set<Int> = [slot]
        for key in keys.dropFirst() { slots.insert(HashSlot.of(key)) }
        return slots.count == 1 ? .slot(slot) : .crossSlot(slots.sorted())
    }

    /// The error for a command whose keys span slots, with what to do.
    package static func crossSlotError(_ command: RedisCommand, slots: [Int]) -> RedisError {
        RedisError(code: .crossSlot, message: "\(command.name)'s keys map to \(slots.count) hash slots (\(slots.prefix(4).map(String.init).joined(separator: ", "))\(slots.count > 4 ? ", …" : "")); on Redis Cluster one command's keys must share a slot. Give them a common hash tag, e.g. user:{42}:a and user:{42}:b, or send one command per key")
    }
}
