import SimulatedLLM
import Testing

@Suite("SplitMix64")
struct SplitMix64Tests {
    /// The published outputs of Vigna's reference `splitmix64.c` for the seed 1234567: the
    /// simulator, the chaos workloads and the randomised tests all draw from this generator, so
    /// it must be SplitMix64 itself (it once multiplied by a mistyped constant).
    @Test("matches the reference implementation's outputs for seed 1234567")
    func matchesReferenceOutputs() {
        var generator = SplitMix64(seed: 1_234_567)
        #expect(generator.next() == 6_457_827_717_110_365_317)
        #expect(generator.next() == 3_203_168_211_198_807_973)
        #expect(generator.next() == 9_817_491_932_198_370_423)
    }

    @Test("nextUnit draws from [0, 1) with the top 53 bits of the next output")
    func unitInterval() {
        var generator = SplitMix64(seed: 1_234_567)
        #expect(generator.nextUnit() == Double(6_457_827_717_110_365_317 >> 11) * 0x1p-53)
        var bounds = SplitMix64(seed: 0)
        for _ in 0..<10_000 {
            let unit = bounds.nextUnit()
            #expect(unit >= 0 && unit < 1)
        }
    }
}
