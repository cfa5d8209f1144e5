import Foundation
import Subprocess
import SystemPackage

/// Runs one of the repository's `scripts/ensure-*.sh` installers, which install into a cache folder
/// outside git (`STAMPEDE_CACHE_DIR`, default `~/.cache/stampede`) only what is missing and print
/// the installed path as their one stdout line.
package enum InstallScript {
    /// The repository's `scripts/` folder: `STAMPEDE_SCRIPTS_DIR`, else the one next to this source
    /// file's checkout (tests, `swift run`, and binaries built from a clone).
    package static var scriptsDirectory: String {
        if let configured = ProcessInfo.processInfo.environment["STAMPEDE_SCRIPTS_DIR"], !configured.isEmpty { return configured }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts").path
    }

    /// Runs `scripts/<name>` and returns the path it printed.
    /// - Throws: ``LocalServicesError`` with the script's own error output when it fails.
    package static func run(_ name: String) async throws -> String {
        let script = scriptsDirectory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: script) else {
            throw LocalServicesError("\(script) not found; run from a clone of StampedeCache or set STAMPEDE_SCRIPTS_DIR to its scripts/ folder")
        }
        let result = try await Subprocess.run(
            .path(FilePath("/bin/bash")), arguments: [script], input: .none,
            output: .string(limit: 1 << 16), error: .string(limit: 1 << 20)
        )
        let printed = result.standardOutput.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        guard result.terminationStatus == .exited(0), !printed.isEmpty else {
            throw LocalServicesError("\(name) failed (\(result.terminationStatus)): \(result.standardError.suffix(2_000))")
        }
        return printed
    }
}
