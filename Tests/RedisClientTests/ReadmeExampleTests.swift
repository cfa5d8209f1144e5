import Logging
import NIOCore
import RedisClient
import RedisTestSupport
import Testing

@Suite("README examples compile and run", .sharedRedis)
struct ClientReadmeExampleTests {
    @Test("the RedisClient example in README.md is this code and works")
    func clientExample() async throws {
        let redisURL = try TestRedis.sharedURL
        // README example: client
        let client = try RedisClient(url: redisURL, clientName: "worker-1")
        try await client.set("greeting", to: "hello", expiresIn: .seconds(60))
        let greeting = try await client.get("greeting")                      // ByteBuffer?
        let counter = try await client.send("INCRBY", "visits", 5).int      // any command
        let script = RedisScript(name: "double", source: "return tonumber(ARGV[1]) * 2")
        let doubled = try await client.evalSHA(script, args: ["21"]).int    // NOSCRIPT handled
        let news = try await client.subscriber.subscribe(to: ["news"])
        try await client.publish("cache warmed", to: "news")
        for await case .message(let message) in news {
            print(String(buffer: message.payload))                          // "cache warmed"
            break
        }
        await client.close()
        // end of README example
        #expect(greeting.map { String(buffer: $0) } == "hello")
        #expect(counter ?? 0 >= 5)
        #expect(doubled == 42)
        let (readme, source) = try readmeExampleMatches("client")
        #expect(readme != nil && readme == source)
        let (article, _) = try readmeExampleMatches("client", document: "Sources/RedisClient/Documentation.docc/RedisClient.md")
        #expect(article != nil && article == source)
    }
}
