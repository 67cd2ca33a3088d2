import Tensor

/// The generator of this module's runs (SplitMix64 from the numeric core): the same `seed`
/// gives the same run on every platform.
public typealias SeededRandom = SplitMix64

extension SplitMix64 {
    /// A generator for item `index` of a run seeded with `seed`: items stay reproducible when a
    /// run is resumed part way.
    public static func forItem(_ index: Int, seed: UInt64) -> SplitMix64 {
        var g = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93))
        _ = g.next()
        return g
    }
}
