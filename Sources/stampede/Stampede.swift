import ArgumentParser
import RedisServerProcess

@main
struct Stampede: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede",
        abstract: "StampedeCache: a Redis-backed cache where exactly one worker in the fleet computes each missing value.",
        subcommands: [DemoCommand.self, AskCommand.self, TuneGroup.self, StatsCommand.self, InvalidateCommand.self, ConfigCommand.self, ChaosCommand.self, ChaosWorkerCommand.self, Bench.self, CacheCommand.self, SemanticCommand.self, ServeCommand.self]
    )

    /// ArgumentParser's entry point, after installing the cleanup that SIGINT, SIGTERM and SIGHUP
    /// run: private redis-servers and chaos workers are killed and temporary directories removed.
    static func main() async {
        ProcessCleanup.installSignalHandlers()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            ProcessCleanup.waitIfTerminating()
            exit(withError: error)
        }
        ProcessCleanup.waitIfTerminating()
    }
}

/// `stampede tune`: `cache` (the default: lock TTL, hot keys, fresh/stale windows) and `semantic` (the similarity threshold).
struct TuneGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Choose settings from measurements: `tune cache` (default) for lockTTL, hot keys and fresh/stale windows; `tune semantic` for the similarity threshold.",
        subcommands: [TuneCommand.self, SemanticTuneCommand.self],
        defaultSubcommand: TuneCommand.self
    )
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure StampedeCache against baselines, in one run, on one Redis.",
        subcommands: [ClientBench.self, CacheBench.self, CompareBench.self, SemanticBench.self, ClusterBench.self, ProxyBench.self, CodecBench.self]
    )
}
