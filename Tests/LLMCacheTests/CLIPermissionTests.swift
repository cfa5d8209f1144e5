import Foundation
import RedisClient
import RedisTestSupport
import Testing

@Suite("the stampede command line: Redis permissions", .sharedRedis)
struct CLIPermissionTests {
    @Test("config check --ping names every command the Redis user may not run (an ACL without SPUBLISH), and exits non-zero")
    func missingPublishIsReported() async throws {
        let url = try TestRedis.sharedURL
        let admin = try makeClient(url)
        let user = "nopub\(UInt32.random(in: 0..<UInt32.max))"
        _ = try await admin.send("ACL", "SETUSER", RedisArgument(user), "on", ">secret-pw", "~*", "&*", "+@all", "-spublish")
        let limitedURL = url + (url.contains("?") ? "&" : "?") + "user=\(user)&password=secret-pw"
        let result = try await runStampede(["config", "check", "--ping"], environment: ["REDIS_URL": limitedURL, "STAMPEDE_NAMESPACE": "perm"])
        #expect(result.status != 0)
        #expect(result.stdout.contains("redis permission: SPUBLISH stampede:notify:perm: NOPERM"), "\(result.stdout)")
        #expect(!result.stdout.contains("EVALSHA get_or_lock:") && !result.stdout.contains("SUBSCRIBE"), "only what is missing is listed")
        #expect(!(result.stdout + result.stderr).contains("secret-pw"), "the password never appears")
        let allowed = try await runStampede(["config", "check", "--ping"], environment: ["REDIS_URL": url, "STAMPEDE_NAMESPACE": "perm"])
        #expect(allowed.status == 0, "\(allowed.stdout)")
        #expect(allowed.stdout.contains("every command the cache needs is allowed"))
        _ = try await admin.send("ACL", "DELUSER", RedisArgument(user))
        await admin.close()
    }
}
