/// A count-min sketch of recent request frequencies (TinyLFU's admission filter): four rows of
/// 4-bit-style counters (saturating at 15) over a power-of-two width. Every ``sampleSize``
/// increments all counters are halved, so old popularity fades.
struct FrequencySketch: Sendable {
    private var counters: [UInt8]
    private let widthShift: Int
    private let width: Int
    private let sampleSize: Int
    private var additions = 0

    /// A sketch sized for `capacity` entries (width ≥ 4 × capacity, at most 2^24 per row).
    init(capacity: Int) {
        var width = 64
        while width < capacity * 4, width < 1 << 24 { width <<= 1 }
        self.width = width
        self.widthShift = 64 - width.trailingZeroBitCount
        self.counters = [UInt8](repeating: 0, count: width * 4)
        self.sampleSize = max(640, capacity * 10)
    }

    private func index(_ hash: Int, row: Int) -> Int {
        var x = UInt64(bitPattern: Int64(hash)) &+ UInt64(row + 1) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return row * width + Int(truncatingIfNeeded: x >> UInt64(widthShift))
    }

    /// Counts one request for the key whose hash is `hash`.
    mutating func increment(_ hash: Int) {
        var added = false
        for row in 0..<4 {
            let slot = index(hash, row: row)
            if counters[slot] < 15 {
                counters[slot] += 1
                added = true
            }
        }
        guard added else { return }
        additions += 1
        if additions >= sampleSize { age() }
    }

    /// The estimated recent request count (0...15) for the key whose hash is `hash`.
    func estimate(_ hash: Int) -> Int {
        var least = 15
        for row in 0..<4 { least = min(least, Int(counters[index(hash, row: row)])) }
        return least
    }

    private mutating func age() {
        for slot in counters.indices { counters[slot] >>= 1 }
        additions /= 2
    }
}
