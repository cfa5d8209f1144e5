import Crypto

/// Virtual API keys are stored and compared as SHA-256 hashes, so the configuration file (and a
/// memory dump of the tenant table) holds no usable key.
public enum VirtualKey {
    /// The SHA-256 of `key`'s UTF-8 bytes as 64 lower-case hex characters.
    public static func sha256Hex(_ key: String) -> String {
        let digest = SHA256.hash(data: Array(key.utf8))
        let hex: [Character] = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(64)
        for byte in digest {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return text
    }
}
