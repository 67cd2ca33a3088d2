/// Small deterministic random generators: the same seed gives the same numbers on every
/// platform (which `SystemRandomNumberGenerator` cannot), and their state can be saved.
///
/// One place for every module's sampling, shuffling, HNSW levels and initialisation.

/// SplitMix64 (Steele, Lea & Flood): the whole state is one `UInt64`.
public struct SplitMix64: RandomNumberGenerator, Codable, Sendable, Equatable {
    /// The generator's state (saved in checkpoints).
    public var state: UInt64
    /// - Parameter seed: the initial state.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A float uniform in [0, 1) (24 random bits).
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64: fast, with a long period.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Equatable {
    /// The four state words (persisted by the HNSW index so a reloaded graph continues the same stream).
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = SplitMix64(seed: seed)
        state = (s.next(), s.next(), s.next(), s.next())
    }

    public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    public static func == (a: Xoshiro256, b: Xoshiro256) -> Bool {
        a.state.0 == b.state.0 && a.state.1 == b.state.1 && a.state.2 == b.state.2 && a.state.3 == b.state.3
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in (0, 1] (never 0, so −ln u is finite).
    public mutating func nextUnitInterval() -> Double { (Double(next() >> 11) + 1) * 0x1p-53 }
}
