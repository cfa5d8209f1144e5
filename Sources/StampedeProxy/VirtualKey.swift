import Crypto
import LLMCache

/// Virtual API keys are stored and compared as SHA-256 hashes, so the configuration file (and a
/// memory dump of the tenant table) holds no usable key.
public enum VirtualKey {
    /// The SHA-256 of `key`'s UTF-8 bytes as 64 lower-case hex characters.
    public static func sha256Hex(_ key: String) -> String {
        SHA256.hex(Array(key.utf8))
    }
}
