/// A proxy configuration that cannot be used; the message names the setting and what to change.
public struct ProxyConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String

    /// An error with `message`.
    public init(_ message: String) { self.message = message }

    /// `Invalid proxy configuration: <message>`.
    public var description: String { "Invalid proxy configuration: \(message)" }
}
