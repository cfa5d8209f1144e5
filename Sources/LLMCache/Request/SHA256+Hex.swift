package import Crypto
package import Foundation

extension SHA256 {
    /// Lowercase hex SHA-256 of `data` (the request key's hash; the proxy's virtual keys).
    package static func hex(_ data: some DataProtocol) -> String {
        let digest = SHA256.hash(data: data)
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
