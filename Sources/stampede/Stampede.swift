import ArgumentParser

@main
struct Stampede: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede",
        abstract: "StampedeCache: a Redis-backed cache where exactly one worker in the fleet computes each missing value.",
        subcommands: [DemoCommand.self, AskCommand.self, TuneCommand.self, StatsCommand.self, InvalidateCommand.self, ConfigCommand.self, ChaosCommand.self, ChaosWorkerCommand.self, Bench.self, CacheCommand.self]
    )
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure StampedeCache against baselines, in one run, on one Redis.",
        subcommands: [ClientBench.self, CacheBench.self, CompareBench.self]
    )
}
