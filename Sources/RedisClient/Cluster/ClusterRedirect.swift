/// A `MOVED` or `ASK` error reply from a cluster node: where the slot (now or for this one command) lives.
package enum ClusterRedirect: Equatable, Sendable {
    /// `MOVED <slot> <host:port>`: the slot belongs to that node now; update the map and retry there.
    case moved(slot: Int, to: RedisConfiguration.Endpoint)
    /// `ASK <slot> <host:port>`: the slot is migrating; send `ASKING` and this one command there.
    case ask(slot: Int, to: RedisConfiguration.Endpoint)

    /// Parses an error message; `nil` for any other error.
    package init?(errorMessage message: String) {
        let parts = message.split(separator: " ")
        guard parts.count >= 3, parts[0] == "MOVED" || parts[0] == "ASK", let slot = Int(parts[1]),
              (0..<HashSlot.count).contains(slot), let endpoint = Self.endpoint(parts[2]) else { return nil }
        self = parts[0] == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
    }

    /// `host:port` (the host may be an IPv6 address, so the port is after the last colon).
    static func endpoint(_ text: Substring) -> RedisConfiguration.Endpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        return .tcp(host: String(host), port: port)
    }
}
