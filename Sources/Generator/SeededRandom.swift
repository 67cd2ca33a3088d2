/// A small deterministic generator (SplitMix64): the same `seed` gives the same run on every
/// platform, which `SystemRandomNumberGenerator` cannot.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for item `index` of a run seeded with `seed`: items stay reproducible when a
    /// run is resumed part way.
    public static func forItem(_ index: Int, seed: UInt64) -> SeededRandom {
        var g = SeededRandom(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93))
        _ = g.next()
        return g
    }
}
