/// Merges a streamed answer's tool-call deltas into the tool calls of the non-streamed shape.
///
/// OpenAI streams each tool call in pieces: the first delta for an `index` carries its `id`, `type`
/// and `function.name`, the following ones further text of `function.arguments`. Joining the
/// deltas' JSON texts (as this library once did) gives `[…][…]`, which is not JSON, and the calls
/// were lost. Here each call is rebuilt by `index`: `id` and `type` are taken from the first delta
/// that has them, `function.name` and `function.arguments` are joined in order, and any other field
/// of the call is kept.
struct ToolCallAccumulator: Sendable {
    private struct Call: Sendable {
        var fields: [String: JSONValue] = [:]
        var function: [String: JSONValue] = [:]
        var name = ""
        var arguments = ""
    }

    private var calls: [Int64: Call] = [:]
    /// Deltas that were not an array of objects with an integer `index` (kept out, counted).
    private(set) var ignored = 0

    /// Whether any tool call was seen.
    var isEmpty: Bool { calls.isEmpty }

    /// Adds one chunk's `delta.tool_calls` (its JSON text).
    mutating func add(_ deltaJSON: String) {
        guard let delta = try? JSONValue(parsing: deltaJSON) else {
            ignored += 1
            return
        }
        add(delta)
    }

    /// Adds one chunk's `delta.tool_calls`.
    mutating func add(_ delta: JSONValue) {
        guard case .array(let items) = delta else {
            ignored += 1
            return
        }
        for item in items {
            guard case .object(let fields) = item, case .int(let index)? = fields["index"] else {
                ignored += 1
                continue
            }
            var call = calls[index] ?? Call()
            for (name, value) in fields where name != "index" && name != "function" {
                if call.fields[name] == nil || call.fields[name] == .null { call.fields[name] = value }
            }
            if case .object(let function)? = fields["function"] {
                for (name, value) in function {
                    switch (name, value) {
                    case ("name", .string(let text)): call.name += text
                    case ("arguments", .string(let text)): call.arguments += text
                    default: if call.function[name] == nil { call.function[name] = value }
                    }
                }
            }
            calls[index] = call
        }
    }

    /// The merged calls, in `index` order, as a JSON array text; `nil` when there were none.
    var json: String? {
        guard !calls.isEmpty else { return nil }
        let merged: [JSONValue] = calls.keys.sorted().map { index in
            let call = calls[index]!
            var fields = call.fields
            var function = call.function
            function["name"] = .string(call.name)
            function["arguments"] = .string(call.arguments)
            fields["function"] = .object(function)
            return .object(fields)
        }
        return JSONValue.array(merged).canonicalJSON()
    }
}
