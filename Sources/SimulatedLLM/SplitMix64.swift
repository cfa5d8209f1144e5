/// SplitMix64 (Steele, Lea and Flood, 2014; Vigna's reference `splitmix64.c`): a tiny, fast,
/// seedable pseudo-random generator. The simulated upstream draws its latencies, failures, answer
/// texts and embeddings from it, the chaos workloads their request mixes, and randomised tests
/// their cases, so a run is reproducible from its seed. Not for anything secret.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator state.
    private var state: UInt64

    /// A generator from `seed`.
    package init(seed: UInt64) {
        self.state = seed
    }

    /// The next 64 random bits.
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `[0, 1)`.
    package mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}
