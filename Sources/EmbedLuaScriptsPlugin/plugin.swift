import Foundation
import PackagePlugin

/// Embeds every `LuaScripts/*.lua` file into the target at build time (see `EmbedLuaScripts`).
@main
struct EmbedLuaScriptsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "LuaScripts")
        let scripts = try FileManager.default
            .contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "lua" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedLuaScripts.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(scripts.count) Lua scripts into \(target.name)",
                executable: try context.tool(named: "EmbedLuaScripts").url,
                arguments: [output.path] + scripts.map(\.path),
                inputFiles: scripts,
                outputFiles: [output]
            )
        ]
    }
}
