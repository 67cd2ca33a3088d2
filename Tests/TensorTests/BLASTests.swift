import XCTest
import CKernels
@testable import Tensor

/// GEMM and GEMV against naive triple loops, for every transpose combination and for strided
/// (column-slice) operands.
final class BLASTests: XCTestCase {
    /// Deterministic pseudo-random values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
    }

    func testGemmAllTransposes() {
        let m = 7, n = 5, k = 9
        for transA in [false, true] {
            for transB in [false, true] {
                let a = Self.values(m * k, seed: 1), b = Self.values(k * n, seed: 2)
                var c = Self.values(m * n, seed: 3)
                let c0 = c
                BLAS.gemm(a: a, transA: transA, b: b, transB: transB, c: &c, m: m, n: n, k: k, alpha: 0.5, beta: 2)
                var maxDiff: Float = 0
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Float = 0
                        for p in 0..<k {
                            let av = transA ? a[p * m + i] : a[i * k + p]   // A stored (K, M) or (M, K)
                            let bv = transB ? b[j * k + p] : b[p * n + j]   // B stored (N, K) or (K, N)
                            s += av * bv
                        }
                        maxDiff = max(maxDiff, abs(0.5 * s + 2 * c0[i * n + j] - c[i * n + j]))
                    }
                }
                XCTAssertLessThan(maxDiff, 1e-5, "transA=\(transA) transB=\(transB)")
            }
        }
    }

    /// One attention head inside a fused (T, 3C) buffer: Q_h K_hᵀ via leading dimensions.
    func testGemmStridedSlices() {
        let t = 6, c = 8, hs = 4, h = 1
        let qkv = Self.values(t * 3 * c, seed: 4)  // (T, 3C)
        var scores = [Float](repeating: .nan, count: t * t)  // (T, T); beta 0 must ignore NaN
        qkv.withUnsafeBufferPointer { p in
            scores.withUnsafeMutableBufferPointer { s in
                BLAS.gemm(a: p.baseAddress! + h * hs, lda: 3 * c,
                          b: p.baseAddress! + c + h * hs, transB: true, ldb: 3 * c,
                          c: s.baseAddress!, m: t, n: t, k: hs)
            }
        }
        for i in 0..<t {
            for j in 0..<t {
                var s: Float = 0
                for d in 0..<hs { s += qkv[i * 3 * c + h * hs + d] * qkv[j * 3 * c + c + h * hs + d] }
                XCTAssertEqual(scores[i * t + j], s, accuracy: 1e-5)
            }
        }
    }

    func testGemv() {
        let m = 6, n = 11
        let a = Self.values(m * n, seed: 5), x = Self.values(n, seed: 6), xt = Self.values(m, seed: 7)
        var y = [Float](repeating: 1, count: m), yt = [Float](repeating: 0, count: n)
        a.withUnsafeBufferPointer { pa in
            BLAS.gemv(a: pa.baseAddress!, x: x, y: &y, m: m, n: n, beta: 1)
            BLAS.gemv(a: pa.baseAddress!, trans: true, x: xt, y: &yt, m: m, n: n)
        }
        for i in 0..<m {
            let s = (0..<n).reduce(Float(1)) { $0 + a[i * n + $1] * x[$1] }
            XCTAssertEqual(y[i], s, accuracy: 1e-5)
        }
        for j in 0..<n {
            let s = (0..<m).reduce(Float(0)) { $0 + a[$1 * n + j] * xt[$1] }
            XCTAssertEqual(yt[j], s, accuracy: 1e-5)
        }
    }

    /// Row-split (large M) and column-split (small M) parallel products equal one call.
    func testParallelGemmMatchesSerial() {
        for (m, n, k) in [(300, 200, 100), (8, 3000, 64), (37, 1000, 50)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = Self.values(m * k, seed: 8), b = Self.values(k * n, seed: 9)
                    var serial = Self.values(m * n, seed: 10), parallel = serial
                    BLAS.gemm(a: a, transA: transA, b: b, transB: transB, c: &serial, m: m, n: n, k: k, beta: 0.5)
                    BLAS.gemm(a: a, transA: transA, b: b, transB: transB, c: &parallel, m: m, n: n, k: k, beta: 0.5, parallel: true)
                    let diff = zip(serial, parallel).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(diff, 1e-5, "m=\(m) n=\(n) k=\(k) transA=\(transA) transB=\(transB)")
                }
            }
        }
    }

    /// `gemmFewRows` (the unpacked AVX2 kernel up to 64 rows, `sgemm` above) against a float64
    /// product, over every tile remainder (rows mod 3, weight rows mod 4, K mod 8), W in several
    /// blocks with a partial last one (K = 1536: 24-row blocks), and above the limit.
    func testGemmFewRowsMatchesFloat64() {
        for (m, n, k) in [(1, 5, 8), (2, 7, 13), (3, 4, 576), (5, 130, 64), (32, 1536, 576), (64, 67, 100), (65, 40, 24), (7, 102, 1536)] {
            let x = Self.values(m * k, seed: 11), w = Self.values(n * k, seed: 12)
            var c = [Float](repeating: .nan, count: m * n)
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    c.withUnsafeMutableBufferPointer { BLAS.gemmFewRows(x: xp.baseAddress!, w: wp.baseAddress!, c: $0.baseAddress!, m: m, n: n, k: k) }
                }
            }
            var worst: Double = 0
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0, scale = 0.0
                    for t in 0..<k { s += Double(x[i * k + t]) * Double(w[j * k + t]); scale += abs(Double(x[i * k + t]) * Double(w[j * k + t])) }
                    worst = max(worst, abs(Double(c[i * n + j]) - s) / max(scale, 1e-30))
                }
            }
            print("gemmFewRows m=\(m) n=\(n) k=\(k): worst error relative to sum |x·w| \(worst)")
            XCTAssertLessThan(worst, 1e-6, "m=\(m) n=\(n) k=\(k)")
        }
    }

    func testParallelGemvMatchesSerial() {
        let m = 700, n = 1500
        let a = Self.values(m * n, seed: 11), x = Self.values(n, seed: 12), xt = Self.values(m, seed: 13)
        var y1 = [Float](repeating: 0, count: m), y2 = y1, t1 = [Float](repeating: 0, count: n), t2 = t1
        a.withUnsafeBufferPointer { pa in
            BLAS.gemv(a: pa.baseAddress!, x: x, y: &y1, m: m, n: n)
            BLAS.gemv(a: pa.baseAddress!, x: x, y: &y2, m: m, n: n, parallel: true)
            BLAS.gemv(a: pa.baseAddress!, trans: true, x: xt, y: &t1, m: m, n: n)
            BLAS.gemv(a: pa.baseAddress!, trans: true, x: xt, y: &t2, m: m, n: n, parallel: true)
        }
        XCTAssertLessThan(zip(y1, y2).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertLessThan(zip(t1, t2).map { abs($0 - $1) }.max()!, 1e-5)
    }

    func testOpenBLASIsPinnedToOneThread() {
        XCTAssertEqual(BLAS.openBLASThreads, 1)
    }

    func testEmptyDimensionsAreNoOps() {
        var c: [Float] = [3]
        BLAS.gemm(a: [], b: [], c: &c, m: 0, n: 1, k: 0)
        XCTAssertEqual(c, [3])
        BLAS.gemm(a: [], b: [], c: &c, m: 1, n: 1, k: 0, beta: 0)  // empty sum
        XCTAssertEqual(c, [0])
    }
}

/// `BLAS.gemm(x:rows:packed:bias:c:)` (AVX2 tiles of 6 × 16) and the portable scalar loop against
/// a float64 product: row counts around the tile height and the parallel split, column counts that
/// leave a padded panel, K of 1 to 1536, with and without bias.
final class PackedGemmTests: XCTestCase {
    func testPackedGemmMatchesFloat64OnBothPaths() {
        var state: UInt64 = 99
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        var worst = 0.0
        for (m, n, k) in [(1, 1, 1), (5, 17, 3), (6, 16, 384), (7, 33, 37), (13, 384, 384), (200, 1536, 384), (64, 384, 1536)] {
            let x = (0..<(m * k)).map { _ in next() }, w = (0..<(n * k)).map { _ in next() }
            let bias = (0..<n).map { _ in next() }
            let packed = PackedMatrix(w, rows: n, columns: k)
            for withBias in [true, false] {
                var fast = [Float](repeating: .nan, count: m * n), portable = fast
                bias.withUnsafeBufferPointer { b in
                    let b = withBias ? b.baseAddress : nil
                    BLAS.gemm(x: x, rows: m, packed: packed, bias: b, c: &fast)
                    packed.panels.withUnsafeBufferPointer { ck_gemm_packed_portable(x, k, m, k, $0.baseAddress!, n, b, &portable, n) }
                }
                for i in 0..<m {
                    for j in 0..<n {
                        var ref = withBias ? Double(bias[j]) : 0
                        var scale = abs(ref)
                        for t in 0..<k { ref += Double(x[i * k + t]) * Double(w[j * k + t]); scale += abs(Double(x[i * k + t]) * Double(w[j * k + t])) }
                        for (label, got) in [("avx2", fast[i * n + j]), ("portable", portable[i * n + j])] {
                            let err = abs(Double(got) - ref) / max(scale, 1)
                            worst = max(worst, err)
                            XCTAssertLessThan(err, 1e-5, "\(label) m=\(m) n=\(n) k=\(k) bias=\(withBias) at (\(i), \(j))")
                        }
                    }
                }
            }
        }
        print("packed gemm vs float64: worst error relative to Σ|x·w| \(worst) (tolerance 1e-5)")
    }

    /// Strided packing (rows `ld` apart, as one attention head inside a fused QKV buffer) and the
    /// packing of a transpose (`ck_pack_panels16_t`) give the panels of the plain packing.
    func testStridedAndTransposedPackingMatchPlainPacking() {
        for (rows, cols, ld) in [(1, 1, 3), (16, 32, 96), (21, 7, 10), (206, 32, 1152)] {
            let wide = (0..<(rows * ld)).map { Float($0 % 977) - 488 }
            let dense = (0..<rows).flatMap { r in wide[(r * ld)..<(r * ld + cols)] }   // (rows, cols)
            let plain = PackedMatrix(dense, rows: rows, columns: cols).panels
            var strided = [Float](repeating: .nan, count: plain.count)
            ck_pack_panels16(wide, rows, cols, ld, &strided)
            XCTAssertEqual(strided, plain, "ld \(ld)")
            // The transpose of dense (cols, rows), packed directly from the strided rows.
            let transposed = (0..<cols).flatMap { c in (0..<rows).map { r in dense[r * cols + c] } }
            let plainT = PackedMatrix(transposed, rows: cols, columns: rows).panels
            var packedT = [Float](repeating: .nan, count: plainT.count)
            ck_pack_panels16_t(wide, rows, cols, ld, &packedT)
            XCTAssertEqual(packedT, plainT, "transpose, ld \(ld)")
        }
    }

    /// The bfloat16 panels: with X and W rounded to bfloat16 first (round to nearest even), the
    /// products are exact in float32, so both paths must match a float64 sum of the rounded
    /// values to float32 rounding; against the unrounded values the error stays within bfloat16's
    /// 2^-8 relative step. Odd K (a zero-padded pair), padded panels, 1 to 37 rows, bias or not.
    func testBFloat16PackedGemmMatchesFloat64OnBothPaths() {
        var state: UInt64 = 7
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 200_001 - 100_000) / 100_000
        }
        func bf16(_ f: Float) -> Double {
            let u = f.bitPattern
            return Double(Float(bitPattern: (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000))
        }
        var worstRounded = 0.0, worstExact = 0.0
        for (m, n, k) in [(1, 1, 1), (3, 17, 3), (8, 32, 64), (9, 48, 37), (37, 576, 576), (16, 40, 1536)] {
            let x = (0..<(m * k)).map { _ in next() }, w = (0..<(n * k)).map { _ in next() }
            let bias = (0..<n).map { _ in next() }
            let packed = PackedMatrix(w, rows: n, columns: k, format: .bfloat16)
            XCTAssertEqual(packed.bytes, (n + 15) / 16 * 16 * ((k + 1) / 2 * 2) * 2)
            for withBias in [true, false] {
                var fast = [Float](repeating: .nan, count: m * n), portable = fast
                bias.withUnsafeBufferPointer { b in
                    let b = withBias ? b.baseAddress : nil
                    BLAS.gemm(x: x, rows: m, packed: packed, bias: b, c: &fast)
                    packed.halfPanels.withUnsafeBufferPointer {
                        ck_gemm_packed_bf16_portable(x, k, m, k, $0.baseAddress!, n, b, &portable, n)
                    }
                }
                for i in 0..<m {
                    for j in 0..<n {
                        var rounded = withBias ? Double(bias[j]) : 0, exact = rounded, scale = abs(rounded)
                        for t in 0..<k {
                            rounded += bf16(x[i * k + t]) * bf16(w[j * k + t])
                            exact += Double(x[i * k + t]) * Double(w[j * k + t])
                            scale += abs(Double(x[i * k + t]) * Double(w[j * k + t]))
                        }
                        for (label, got) in [("native", fast[i * n + j]), ("portable", portable[i * n + j])] {
                            let r = abs(Double(got) - rounded) / max(scale, 1e-3), e = abs(Double(got) - exact) / max(scale, 1e-3)
                            worstRounded = max(worstRounded, r)
                            worstExact = max(worstExact, e)
                            XCTAssertLessThan(r, 1e-5, "\(label) m=\(m) n=\(n) k=\(k) bias=\(withBias) at (\(i), \(j))")
                            XCTAssertLessThan(e, 8e-3, "\(label) vs unrounded, m=\(m) n=\(n) k=\(k) at (\(i), \(j))")
                        }
                    }
                }
            }
        }
        print("bfloat16 packed gemm (native AVX-512 BF16: \(PackedMatrix.bfloat16IsNative)) vs float64: worst error "
              + "relative to Σ|x·w| \(worstRounded) on the rounded values (tolerance 1e-5), \(worstExact) on the "
              + "unrounded ones (tolerance 8e-3)")
    }

    /// Packing a weight chunk by chunk (`init(rows:columns:format:chunk:fill:)`, as the model
    /// loader does) gives the panels of packing it whole, in both formats.
    func testChunkedPackingMatchesWholePacking() {
        for (rows, cols, chunk) in [(1, 3, 16), (37, 7, 16), (100, 33, 32), (64, 576, 8192)] {
            let w = (0..<(rows * cols)).map { Float($0 % 1013) / 97 - 5 }
            for format in [PackedMatrix.Format.float32, .bfloat16] {
                let whole = PackedMatrix(w, rows: rows, columns: cols, format: format)
                var calls = 0
                let chunked = PackedMatrix(rows: rows, columns: cols, format: format, chunk: chunk) { range, out in
                    calls += 1
                    for (i, r) in range.enumerated() { for c in 0..<cols { out[i * cols + c] = w[r * cols + c] } }
                }
                XCTAssertEqual(chunked.panels, whole.panels, "\(format) \(rows)x\(cols) chunk \(chunk)")
                XCTAssertEqual(chunked.halfPanels, whole.halfPanels, "\(format) \(rows)x\(cols) chunk \(chunk)")
                XCTAssertEqual(calls, (rows + chunk - 1) / chunk)
            }
        }
    }
}
