// Build tool: turns LuaScripts/*.lua into a Swift file with each script's exact text, so a worker
// binary carries its scripts (no resource bundle to lose when the binary is copied elsewhere).
// `prelude.lua` (the helpers every script shares) is not a script of its own: it is prepended to
// each of the others, so the helpers live once in the source and EVALSHA runs prelude + script.
// Usage: EmbedLuaScripts OUTPUT.swift a.lua b.lua ...
import Foundation

let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: EmbedLuaScripts OUTPUT.swift FILE.lua...\n".utf8))
    exit(2)
}

func readScript(_ path: String) throws -> String {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    guard let text = String(data: data, encoding: .utf8), !text.contains("\r") else {
        FileHandle.standardError.write(Data("\(path): must be UTF-8 with LF line endings\n".utf8))
        exit(1)
    }
    return text
}

let paths = arguments.dropFirst().sorted()
guard let preludePath = paths.first(where: { URL(fileURLWithPath: $0).lastPathComponent == "prelude.lua" }) else {
    FileHandle.standardError.write(Data("LuaScripts/prelude.lua is missing\n".utf8))
    exit(1)
}
let prelude = try readScript(preludePath)

var entries: [String] = []
for path in paths where path != preludePath {
    let url = URL(fileURLWithPath: path)
    let name = url.deletingPathExtension().lastPathComponent
    let text = prelude + (try readScript(path))
    // A raw string delimiter longer than any run of '#' in the text, so nothing in it can end the literal.
    var longestRun = 0
    var run = 0
    for character in text {
        run = character == "#" ? run + 1 : 0
        longestRun = max(longestRun, run)
    }
    let hashes = String(repeating: "#", count: longestRun + 1)
    // In a multi-line literal the newline before the closing delimiter is not part of the string.
    entries.append("        \"\(name)\": \(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes),")
}

let source = """
    // Generated at build time by EmbedLuaScripts from LuaScripts/*.lua. Do not edit.
    /// The Lua scripts of `LuaScripts/`, each as `prelude.lua` followed by the script's file,
    /// verbatim, keyed by file name without `.lua`.
    package enum EmbeddedLuaScripts {
        /// Script name (file name without `.lua`) to its exact source text.
        package static let sources: [String: String] = [
    \(entries.joined(separator: "\n"))
        ]
    }

    """
let existing = try? String(contentsOfFile: output, encoding: .utf8)
if existing != source {
    try source.write(toFile: output, atomically: true, encoding: .utf8)
}
