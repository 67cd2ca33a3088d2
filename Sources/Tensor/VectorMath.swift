/// Vectorized elementwise math on `SIMD8<Float>` and in-place row operations built on it.
///
/// The kernels use only add, multiply, compare and bit operations, so they vectorize on any
/// x86-64 without `-target-cpu` (no `roundps`, no scalar `expf`/`erff` calls per element).
/// Accuracy (checked in the tests against `Foundation`): `exp` within 1e-7 relative over
/// `[-87, 88]`; `erf` within 4e-7 absolute.
public enum VectorMath {
    // MARK: SIMD kernels

    /// `e^x` for eight floats (Cephes `expf`: range reduction by ln 2, degree-5 polynomial).
    ///
    /// Inputs below -87.3 give a tiny normal number (≈ 1e-38) instead of a subnormal or 0;
    /// inputs above 88.37 give e^88.37 ≈ 2.4e38 (finite). NaN is not propagated.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // Clamp so that n below stays in [-126, 127] (a normal, finite 2^n).
        let x = clamp(x, -87.3, 88.37)
        // n = round(x / ln 2) with the 1.5·2^23 trick (the add rounds to an integer in the mantissa).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        // r = x - n ln 2, in two parts for precision.
        var r = x - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * (r * r) + r + 1
        // 2^n by building the exponent field: n is an integer in [-126, 128].
        let nInt = unsafeBitCast(bits(shifted) &- bits(magic), to: SIMD8<Int32>.self)
        let scale = floats(unsafeBitCast((nInt &+ 127) &<< 23, to: SIMD8<UInt32>.self))
        return y * scale
    }

    /// The error function for eight floats (rational approximation on [-4, 4], as in Eigen;
    /// |x| > 4 gives ±1 to float precision).
    @inlinable @inline(__always)
    public static func erf(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let x = clamp(x, -4, 4)
        let x2 = x * x
        var p = x2 * -2.726_142_258_013_06e-10 + 2.770_681_424_959_02e-08
        p = x2 * p + -2.101_024_020_825_08e-06
        p = x2 * p + -5.692_506_394_623_46e-05
        p = x2 * p + -7.349_906_303_268_55e-04
        p = x2 * p + -2.954_599_808_540_25e-03
        p = x2 * p + -1.609_603_332_624_15e-02
        p = x * p
        var q = x2 * -1.456_607_184_649_96e-05 + -2.133_740_552_789_05e-04
        q = x2 * q + -1.682_826_974_382_03e-03
        q = x2 * q + -7.373_329_167_204_68e-03
        q = x2 * q + -1.426_473_905_141_89e-02
        return p / q
    }

    // MARK: Row operations

    /// Softmax of one row, in place, numerically stable (subtracts the row maximum).
    /// - Parameters:
    ///   - row: `(count)` logits in, probabilities out.
    ///   - count: the row length (at least 1).
    public static func softmax(_ row: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count >= 1, "softmax of an empty row")
        let maxValue = maximum(row, count: count)
        var sum8 = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let e = exp(load8(row + i) - maxValue)
            store8(e, row + i)
            sum8 += e
            i += 8
        }
        var sum = sum8.sum()
        while i < count {
            let e = exp(SIMD8(repeating: row[i] - maxValue))[0]
            row[i] = e
            sum += e
            i += 1
        }
        scale(row, count: count, by: 1 / sum)
    }

    /// Multiplies `count` floats by `factor`, in place.
    /// - Parameters:
    ///   - x: `(count)` values.
    ///   - count: number of values.
    ///   - factor: the scale.
    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
        var i = 0
        while i + 8 <= count {
            store8(load8(x + i) * factor, x + i)
            i += 8
        }
        while i < count { x[i] *= factor; i += 1 }
    }

    /// Sum of `count` floats (eight-lane accumulation).
    /// - Parameters:
    ///   - x: `(count)` values.
    ///   - count: number of values.
    /// - Returns: the sum.
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count { acc += load8(x + i); i += 8 }
        var s = acc.sum()
        while i < count { s += x[i]; i += 1 }
        return s
    }

    /// Largest of `count` floats (eight-lane; NaN is not propagated).
    /// - Parameters:
    ///   - x: `(count)` values, count at least 1.
    ///   - count: number of values.
    /// - Returns: the maximum.
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        precondition(count >= 1, "max of an empty row")
        var m8 = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            let v = load8(x + i)
            m8.replace(with: v, where: v .> m8)
            i += 8
        }
        var m = m8.max()
        while i < count { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// Dot product of two `count`-float vectors (eight-lane accumulation).
    /// - Parameters:
    ///   - x: `(count)` values.
    ///   - y: `(count)` values.
    ///   - count: number of values.
    /// - Returns: `Σ x[i]·y[i]`.
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count { acc += load8(x + i) * load8(y + i); i += 8 }
        var s = acc.sum()
        while i < count { s += x[i] * y[i]; i += 1 }
        return s
    }

    // MARK: Helpers

    /// `min(max(x, lower), upper)` lane-wise, written with compares and selects (the generic
    /// `clamped`/`pointwiseMin` are not inlined and cost a call per vector).
    @inlinable @inline(__always)
    public static func clamp(_ x: SIMD8<Float>, _ lower: Float, _ upper: Float) -> SIMD8<Float> {
        var x = x
        x.replace(with: lower, where: x .< lower)
        x.replace(with: upper, where: x .> upper)
        return x
    }

    // MARK: Bit casts, loads and stores

    /// The IEEE bit patterns of eight floats.
    @inlinable @inline(__always)
    public static func bits(_ x: SIMD8<Float>) -> SIMD8<UInt32> { unsafeBitCast(x, to: SIMD8<UInt32>.self) }

    /// Eight floats from their IEEE bit patterns.
    @inlinable @inline(__always)
    public static func floats(_ bits: SIMD8<UInt32>) -> SIMD8<Float> { unsafeBitCast(bits, to: SIMD8<Float>.self) }

    /// Loads eight floats from a possibly unaligned address.
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Stores eight floats to a possibly unaligned address.
    @inlinable @inline(__always)
    public static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}
