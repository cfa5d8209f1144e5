import Crypto

/// Virtual API keys are stored and compared as SHA-256 hashes, so the configuration file (and a
/// memory dump of the tenant table) holds no usable key.
public enum VirtualKey {
    /// The SHA-256 of `key`'s UTF-8 bytes as 64 lower-case hex characters.
    public static func sha256Hex(_ key: String) -> String {
        let digest = SHA256.hash(data: Array(key.utf8))
        return String(unsafeUninitializedCapacity: 2 * SHA256.byteCount) { text in
            var index = 0
            for byte in digest {
                text[index] = hexDigit(byte >> 4)
                text[index + 1] = hexDigit(byte & 0x0F)
                index += 2
            }
            return index
        }
    }

    /// `0`–`9`, `a`–`f` for a nibble.
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
