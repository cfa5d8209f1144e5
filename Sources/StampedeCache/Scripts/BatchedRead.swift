package import RedisClient

/// One read's answer from a ``ReadBatcher``: its `GET` reply and, when the read or its batch
/// carried `TIME` in front, the server's time (ms) read just before the value.
package struct BatchedRead: Sendable {
    /// The key's value (`GET`'s reply, or its element of the batch's `MGET` reply).
    package var value: RESPValue
    /// The server's clock, from the `TIME` sent in front of the read; `nil` when the read went
    /// without one (the ``ServerClock``'s sample bounds the server's time instead).
    package var serverMillis: Int64?
}
