import CKernels
import _Builtin_intrinsics.intel

// Integer dot products of quantized weight rows with int16-quantized activations.
//
// The float kernels in `QuantDot` spend most of their instructions widening 4-bit weights to
// float32 (zero-extend to 32 bits, insert, convert) before each FMA. Here the weights widen
// only to int16 and `pmaddwd` multiplies 8 pairs and adds adjacent products in one instruction;
// one int32 -> float conversion per 32-weight block remains. Activations are quantized per
// block of 32 to int16 with scale `dx = max|x| / 32767` (relative error <= 1.5e-5 of the
// block's largest value; blocks with an outlier activation round their small values coarsely,
// so results differ from the float kernels by about 1e-5 of the output scale, 10x float noise):
//
//   Q4_1 block: sum_i (dw*q_i + m) x_i ~= dw*dx * sum_i (q_i - 8)*xq_i + (m + 8 dw) * sum_i x_i
//
// That is why decode (at most 4 vectors) keeps the float kernels, whose logits match the float32
// reference to 3e-3, and batched steps (more vectors, where the widening cost of the float
// kernels would repeat per vector) use these.
// where `sum_i x_i` is the exact float block sum. Integer sums cannot overflow: |q| <= 127,
// |xq| <= 32767, 32 products <= 1.34e8 < 2^31.
//
// Only SSE2/SSSE3/SSE4.1 128-bit integer instructions are used (implied by the AVX the target
// is compiled for), so no AVX2 is needed. A step's vectors are processed in tiles of up to 4,
// each weight block unpacked once per tile: the batched-decode path.

// MARK: - Quantized activations

/// `T` activation vectors `(T, K)` quantized per block of 32 for the integer kernels.
struct QuantizedActivations {
    /// `(T, K)` int16 values.
    let values: UnsafeMutablePointer<Int16>
    /// `(T, K/32)` scales `dx`: value = dx * int16.
    let scales: UnsafeMutablePointer<Float>
    /// `(T, K/32)` exact float sums of each block.
    let sums: UnsafeMutablePointer<Float>
    let vectors: Int
    let columns: Int

    /// Quantizes `x (T, K)`; `K` a multiple of 32.
    init(_ x: UnsafePointer<Float>, vectors t: Int, columns k: Int) {
        precondition(k % 32 == 0)
        vectors = t
        columns = k
        values = .allocate(capacity: t * k)
        scales = .allocate(capacity: t * k / 32)
        sums = .allocate(capacity: t * k / 32)
        for b in 0..<(t * k / 32) {
            let p = x + 32 * b
            let v0 = load8(p), v1 = load8(p + 8), v2 = load8(p + 16), v3 = load8(p + 24)
            sums[b] = (v0 + v1 + v2 + v3).sum()
            let sign = SIMD8<Float>(repeating: -0.0)
            let a = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                  _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)))
            let h = _mm_max_ps(a.lowHalf, a.highHalf)
            let amax = max(max(h[0], h[1]), max(h[2], h[3]))
            scales[b] = amax / 32767
            let inv = SIMD8<Float>(repeating: amax > 0 ? 32767 / amax : 0)
            let out = UnsafeMutableRawPointer(values + 32 * b)
            out.storeBytes(of: pack8(v0 * inv), as: __m128i.self)
            out.storeBytes(of: pack8(v1 * inv), toByteOffset: 16, as: __m128i.self)
            out.storeBytes(of: pack8(v2 * inv), toByteOffset: 32, as: __m128i.self)
            out.storeBytes(of: pack8(v3 * inv), toByteOffset: 48, as: __m128i.self)
        }
    }

    func deallocate() {
        values.deallocate()
        scales.deallocate()
        sums.deallocate()
    }
}

/// Rounds 8 floats (within ±32767) to int16 (to nearest even), in order.
@inline(__always)
private func pack8(_ a: SIMD8<Float>) -> __m128i {
    let i = _mm256_cvtps_epi32(a)  // (4 x Int64 lanes holding 8 int32)
    return _mm_packs_epi32(i.lowHalf, i.highHalf)
}

// MARK: - Weight blocks

/// A 32-weight block type with an integer kernel: `weight_i = d * w_i + offset`.
protocol IntBlock {
    static var size: Int { get }
    /// The 32 integer weights as four int16 x 8 vectors (elements 0-7, 8-15, 16-23, 24-31).
    static func unpack(_ p: UnsafeRawPointer) -> (__m128i, __m128i, __m128i, __m128i)
    /// The block scale `d` and the constant `offset` added to every weight.
    static func scaleOffset(_ p: UnsafeRawPointer) -> (Float, Float)
}

private let lowNibbles = _mm_set1_epi8(0x0F)

/// Q4_1: d f16, m f16, 16 bytes of nibbles (low nibbles elements 0-15, high 16-31).
/// Centered: weight = d * (q - 8) + (m + 8d); the centered integers (-8...7) carry about a third
/// of the activation-rounding error of q (0...15), whose common part `7.5 d sum(x)` is exact.
enum IntQ4_1: IntBlock {
    static var size: Int { BlockQ4_1.size }
    @inline(__always) static func unpack(_ p: UnsafeRawPointer) -> (__m128i, __m128i, __m128i, __m128i) {
        nibbles16(p + BlockQ4_1.qsOffset)
    }
    @inline(__always) static func scaleOffset(_ p: UnsafeRawPointer) -> (Float, Float) {
        let d = halfAt(p)
        return (d, halfAt(p, BlockQ4_1.mOffset) + 8 * d)
    }
}

/// Q4_0: d f16, 16 bytes of nibbles; weight = d * (q - 8).
enum IntQ4_0: IntBlock {
    static var size: Int { BlockQ4_0.size }
    @inline(__always) static func unpack(_ p: UnsafeRawPointer) -> (__m128i, __m128i, __m128i, __m128i) {
        nibbles16(p + BlockQ4_0.qsOffset)
    }
    @inline(__always) static func scaleOffset(_ p: UnsafeRawPointer) -> (Float, Float) { (halfAt(p), 0) }
}

/// Q8_0: d f16, 32 int8.
enum IntQ8_0: IntBlock {
    static var size: Int { BlockQ8_0.size }
    @inline(__always) static func unpack(_ p: UnsafeRawPointer) -> (__m128i, __m128i, __m128i, __m128i) {
        let b0 = p.loadUnaligned(fromByteOffset: BlockQ8_0.qsOffset, as: __m128i.self)
        let b1 = p.loadUnaligned(fromByteOffset: BlockQ8_0.qsOffset + 16, as: __m128i.self)
        return (_mm_cvtepi8_epi16(b0), _mm_cvtepi8_epi16(_mm_unpackhi_epi64(b0, b0)),
                _mm_cvtepi8_epi16(b1), _mm_cvtepi8_epi16(_mm_unpackhi_epi64(b1, b1)))
    }
    @inline(__always) static func scaleOffset(_ p: UnsafeRawPointer) -> (Float, Float) { (halfAt(p), 0) }
}

private let eights = _mm_set1_epi8(8)

/// 16 bytes of nibbles minus 8 as int16 x 8 vectors: low nibbles 0-7, 8-15, high nibbles 0-7, 8-15.
@inline(__always)
private func nibbles16(_ q: UnsafeRawPointer) -> (__m128i, __m128i, __m128i, __m128i) {
    let bytes = q.loadUnaligned(as: __m128i.self)
    let lo = _mm_sub_epi8(_mm_and_si128(bytes, lowNibbles), eights)
    let hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), lowNibbles), eights)
    return (_mm_cvtepi8_epi16(lo), _mm_cvtepi8_epi16(_mm_unpackhi_epi64(lo, lo)),
            _mm_cvtepi8_epi16(hi), _mm_cvtepi8_epi16(_mm_unpackhi_epi64(hi, hi)))
}

/// The int32 x 4 partial sums of `w · x` for one block (32 int16 pairs).
@inline(__always)
private func blockDot(_ w: (__m128i, __m128i, __m128i, __m128i), _ x: UnsafePointer<Int16>) -> __m128 {
    let raw = UnsafeRawPointer(x)
    let p0 = _mm_madd_epi16(w.0, raw.loadUnaligned(as: __m128i.self))
    let p1 = _mm_madd_epi16(w.1, raw.loadUnaligned(fromByteOffset: 16, as: __m128i.self))
    let p2 = _mm_madd_epi16(w.2, raw.loadUnaligned(fromByteOffset: 32, as: __m128i.self))
    let p3 = _mm_madd_epi16(w.3, raw.loadUnaligned(fromByteOffset: 48, as: __m128i.self))
    return _mm_cvtepi32_ps(_mm_add_epi32(_mm_add_epi32(p0, p1), _mm_add_epi32(p2, p3)))
}

// MARK: - Kernels

enum QuantIntDot {
    /// Whether `type` has an integer kernel.
    static func supports(_ type: GGMLType) -> Bool {
        switch type {
        case .q4_0, .q4_1, .q8_0: return true
        default: return usesC(type)
        }
    }

    /// Whether the AVX2 kernels of `CKernels` (`ck_qdot_i16_rows`: 256-bit `pmaddwd`, also Q5_0, Q5_1
    /// and the k-quants Q4_K, Q5_K, Q6_K) handle `type` on this CPU; they replace the 128-bit Swift
    /// kernels below.
    static func usesC(_ type: GGMLType) -> Bool { cSupported[Int(type.rawValue)] }

    private static let cSupported: [Bool] = (0..<64).map { ck_qdot_i16_supports(Int32($0)) != 0 }

    /// `out[v * outStride] = row · x_v` for the vectors `first..<first+count` (count <= 4) of `x`.
    /// - Parameters:
    ///   - row: one weight row of `K/32` blocks of `type`.
    ///   - out: where vector `first`'s result goes; later vectors at `outStride` steps.
    @inline(__always)
    static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: QuantizedActivations, first: Int, count: Int,
                    out: UnsafeMutablePointer<Float>, outStride: Int) {
        switch type {
        case .q4_1: tile(IntQ4_1.self, row, x, first, count, out, outStride)
        case .q4_0: tile(IntQ4_0.self, row, x, first, count, out, outStride)
        case .q8_0: tile(IntQ8_0.self, row, x, first, count, out, outStride)
        default: fatalError("QuantIntDot.dot: no integer kernel for \(type)")
        }
    }

    @inline(__always)
    private static func tile<B: IntBlock>(_: B.Type, _ row: UnsafeRawPointer, _ x: QuantizedActivations,
                                          _ first: Int, _ count: Int, _ out: UnsafeMutablePointer<Float>,
                                          _ outStride: Int) {
        switch count {
        case 4: tile4(B.self, row, x, first, out, outStride)
        default:
            for v in 0..<count { out[v * outStride] = single(B.self, row, x, first + v) }
        }
    }

    /// One weight row against one vector.
    private static func single<B: IntBlock>(_: B.Type, _ row: UnsafeRawPointer, _ x: QuantizedActivations,
                                            _ v: Int) -> Float {
        let k = x.columns, nb = k / 32
        let xq = x.values + v * k, dx = x.scales + v * nb, xs = x.sums + v * nb
        var acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps()
        var offsets: Float = 0
        var b = 0
        while b + 2 <= nb {
            let p0 = row + b * B.size, p1 = p0 + B.size
            let (d0, m0) = B.scaleOffset(p0), (d1, m1) = B.scaleOffset(p1)
            acc0 = _mm_fmadd_ps(blockDot(B.unpack(p0), xq + 32 * b), _mm_set1_ps(d0 * dx[b]), acc0)
            acc1 = _mm_fmadd_ps(blockDot(B.unpack(p1), xq + 32 * b + 32), _mm_set1_ps(d1 * dx[b + 1]), acc1)
            offsets += m0 * xs[b] + m1 * xs[b + 1]
            b += 2
        }
        if b < nb {
            let p = row + b * B.size
            let (d, m) = B.scaleOffset(p)
            acc0 = _mm_fmadd_ps(blockDot(B.unpack(p), xq + 32 * b), _mm_set1_ps(d * dx[b]), acc0)
            offsets += m * xs[b]
        }
        return horizontalSum(_mm_add_ps(acc0, acc1)) + offsets
    }

    /// One weight row against four vectors; each block is unpacked once for all four.
    private static func tile4<B: IntBlock>(_: B.Type, _ row: UnsafeRawPointer, _ x: QuantizedActivations,
                                           _ first: Int, _ out: UnsafeMutablePointer<Float>, _ outStride: Int) {
        let k = x.columns, nb = k / 32
        let xq = x.values + first * k, dx = x.scales + first * nb, xs = x.sums + first * nb
        var a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps(), a2 = _mm_setzero_ps(), a3 = _mm_setzero_ps()
        var o = SIMD4<Float>()
        for b in 0..<nb {
            let p = row + b * B.size
            let (d, m) = B.scaleOffset(p)
            let w = B.unpack(p)
            let q = xq + 32 * b
            a0 = _mm_fmadd_ps(blockDot(w, q), _mm_set1_ps(d * dx[b]), a0)
            a1 = _mm_fmadd_ps(blockDot(w, q + k), _mm_set1_ps(d * dx[b + nb]), a1)
            a2 = _mm_fmadd_ps(blockDot(w, q + 2 * k), _mm_set1_ps(d * dx[b + 2 * nb]), a2)
            a3 = _mm_fmadd_ps(blockDot(w, q + 3 * k), _mm_set1_ps(d * dx[b + 3 * nb]), a3)
            o.addProduct(SIMD4(repeating: m), SIMD4(xs[b], xs[b + nb], xs[b + 2 * nb], xs[b + 3 * nb]))
        }
        out[0] = horizontalSum(a0) + o[0]
        out[outStride] = horizontalSum(a1) + o[1]
        out[2 * outStride] = horizontalSum(a2) + o[2]
        out[3 * outStride] = horizontalSum(a3) + o[3]
    }
}

@inline(__always)
private func horizontalSum(_ v: __m128) -> Float { v.sum() }
