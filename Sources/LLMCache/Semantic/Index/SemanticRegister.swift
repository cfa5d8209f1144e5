import RedisClient

/// `semantic_register.lua`: takes the namespace's next registration number and writes the pending
/// document in one atomic step, so registration numbers order documents as the index sees them
/// (of two similar requests in flight, the later always sees the earlier).
///
/// Keys: the namespace's counter, the pending document (one hash tag `{namespace}`). Decodes to the number.
struct SemanticRegister: RedisScriptCommand {
    static let script: RedisScript = {
        guard let source = EmbeddedLuaScripts.sources["semantic_register"] else {
            preconditionFailure("LuaScripts/semantic_register.lua was not embedded at build time")
        }
        return RedisScript(name: "semantic_register", source: source)
    }()

    let keys: [RedisArgument]
    let arguments: [RedisArgument]

    init(counter: String, document: SemanticDocument, ttl: Duration) {
        keys = [RedisArgument(counter), RedisArgument(document.key)]
        arguments = [
            RedisArgument(RediSearchIndex.tag(context: document.context, pending: true)), RedisArgument(bytes: VectorBytes.encode(document.vector)), RedisArgument(document.text),
            RedisArgument(document.cacheKey), RedisArgument(max(1, ttl.wholeMilliseconds)),
        ]
    }

    func decode(_ reply: RESPValue) throws(RedisError) -> Int64 {
        guard case .array(let items) = reply, items.count == 2, items[0].string == "registered", let sequence = items[1].int else {
            throw unexpectedReply(reply)
        }
        return sequence
    }
}
