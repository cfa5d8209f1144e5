import Foundation
import Subprocess
import SystemPackage

/// What a child process printed and how it ended.
package struct ChildRun: Sendable {
    /// The exit code; a child killed by signal `s` reports `128 + s`, as shells do, so a trap
    /// (SIGILL, 132) can never look like an ordinary refusal.
    package let status: Int32
    package let stdout: String
    package let stderr: String
}

/// A child that did not end within its time limit; it has been killed.
package struct ChildTimedOut: Error, CustomStringConvertible {
    package let command: String
    package let limit: Duration
    package var description: String { "\(command) did not end within \(limit); it was killed" }
}

/// Runs `executable` with `arguments`, captures both outputs (up to 16 MiB each, read concurrently
/// by swift-subprocess, so neither pipe can fill and stall the child), and kills it after `timeout`.
///
/// - Parameter environment: changes to the inherited environment; a `nil` value removes the variable.
package func runChild(
    _ executable: String, _ arguments: [String], environment: [String: String?] = [:], timeout: Duration = .seconds(120)
) async throws -> ChildRun {
    var changes: [Environment.Key: String?] = [:]
    for (name, value) in environment {
        guard let key = Environment.Key(rawValue: name) else { throw ChildTimedOut(command: "invalid environment name \(name)", limit: .zero) }
        changes[key] = value
    }
    let childEnvironment = Environment.inherit.updating(changes)
    let command = ([executable] + arguments).joined(separator: " ")
    return try await withThrowingTaskGroup(of: ChildRun?.self) { group in
        group.addTask {
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(arguments), environment: childEnvironment,
                input: .none, output: .string(limit: 16 << 20), error: .string(limit: 16 << 20)
            )
            let status: Int32
            switch result.terminationStatus {
            case .exited(let code): status = code
            case .signaled(let signal): status = 128 + signal
            }
            return ChildRun(status: status, stdout: result.standardOutput, stderr: result.standardError)
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }  // cancelling the run kills the child
        guard let first = try await group.next(), let run = first else { throw ChildTimedOut(command: command, limit: timeout) }
        return run
    }
}

/// Runs the `stampede` executable with `arguments` and extra environment (`REDIS_URL` is removed
/// unless given); returns its exit status and outputs.
package func runStampede(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)) async throws -> ChildRun {
    var changes: [String: String?] = ["REDIS_URL": nil]
    for (name, value) in environment { changes[name] = value }
    return try await runChild(try stampedeBinary(), arguments, environment: changes, timeout: timeout)
}
