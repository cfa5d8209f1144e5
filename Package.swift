// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "StampedeCache",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "StampedeCache", targets: ["StampedeCache"]),
        .executable(name: "stampede", targets: ["stampede"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StampedeCache",
            dependencies: [
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict,
            plugins: ["EmbedLuaScriptsPlugin"]
        ),
        // Build-time embedding of LuaScripts/*.lua (tool + build plugin).
        .executableTarget(name: "EmbedLuaScripts", swiftSettings: [.swiftLanguageMode(.v6)]),
        .plugin(
            name: "EmbedLuaScriptsPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedLuaScripts"],
            path: "Sources/EmbedLuaScriptsPlugin"
        ),
        // Starts and stops private redis-server processes (tests, benchmarks, the demo, chaos runs).
        .target(
            name: "RedisServerProcess",
            dependencies: [
                "CHiredis",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "stampede",
            dependencies: [
                "RedisClient",
                "StampedeCache",
                "RedisServerProcess",
                "CHiredis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Helpers shared by the test targets: a private redis-server per suite or per test.
        .target(
            name: "RedisTestSupport",
            dependencies: [
                "RedisClient",
                "RedisServerProcess",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/RedisTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "StampedeCacheTests",
            dependencies: [
                "RedisTestSupport",
                "StampedeCache",
                "RedisClient",
                "RedisServerProcess",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "RedisTestSupport",
                "RedisClient",
                "RedisServerProcess",
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
