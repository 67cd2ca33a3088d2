import CKernels

/// A weight `W (N, K)` (a PyTorch `Linear` weight, `(out, in)`) packed once into panels of 16
/// rows for ``BLAS/gemm(x:rows:packed:bias:c:)``, which then reads the activations in place and
/// never copies W again: `sgemm` repacks its operands on every call.
///
/// Layout: element `j` of row `16p + l` is at `panels[(p · K + j) · 16 + l]`; the missing rows
/// of the last panel are zero. Memory: `⌈N / 16⌉ · 16 · K` floats, the size of W plus at most
/// 15 rows.
public struct PackedMatrix: Sendable {
    /// N, the output features.
    public let rows: Int
    /// K, the input features.
    public let columns: Int
    let panels: [Float]

    /// Packs `w (rows, columns)`, row-major.
    public init(_ w: UnsafePointer<Float>, rows: Int, columns: Int) {
        precondition(rows > 0 && columns > 0, "PackedMatrix: empty weight \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        panels = [Float](unsafeUninitializedCapacity: (rows + 15) / 16 * 16 * columns) { buf, count in
            ck_pack_panels16(w, rows, columns, columns, buf.baseAddress!)
            count = buf.count
        }
    }

    /// Packs a row-major array of `rows · columns` values.
    public init(_ w: [Float], rows: Int, columns: Int) {
        precondition(w.count == rows * columns, "PackedMatrix: \(w.count) values for \(rows)×\(columns)")
        self = w.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: rows, columns: columns) }
    }
}

extension BLAS {
    /// `C (M, N) = X (M, K) · Wᵀ (+ bias (N))` with `W` packed ahead of time, split over all cores
    /// by rows of X or panels of W, whichever is larger, when large (``parallelThreshold``).
    /// `ck_gemm_packed`: tiles of 6 rows × 16 columns in AVX2 + FMA registers (a scalar loop on
    /// CPUs without them). Results agree with `gemm(transB: true)` to float rounding (another
    /// summation order).
    /// - Parameters:
    ///   - x: `(M, K)` row-major with `K = packed.columns`.
    ///   - rows: M.
    ///   - packed: W.
    ///   - bias: `(N)` values added to every row, or `nil`.
    ///   - c: `(M, N)` output, overwritten.
    public static func gemm(x: UnsafePointer<Float>, rows m: Int, packed: PackedMatrix, bias: UnsafePointer<Float>?,
                            c: UnsafeMutablePointer<Float>) {
        let n = packed.rows, k = packed.columns
        guard m > 0 else { return }
        packed.panels.withUnsafeBufferPointer { wp in
            let wp = UncheckedSendable(wp.baseAddress!), xs = UncheckedSendable(x), cs = UncheckedSendable(c)
            let bs = UncheckedSendable(bias)
            // Pieces share out the larger operand, so it is read once in all: whole 6-row tiles of
            // X (a long batch of tokens) or whole 16-column panels of W (prompts and decode steps
            // of a few hundred rows or fewer). A few pieces per core so uneven progress evens out.
            let tiles = (m + 5) / 6, panels = (n + 15) / 16
            let parallel = m * n * k >= parallelThreshold
            if m > n {
                Parallel.forEach(0..<tiles, chunks: parallel ? min(tiles, 4 * Parallel.coreCount) : 1) { range in
                    let r0 = range.lowerBound * 6, r1 = min(m, range.upperBound * 6)
                    ck_gemm_packed(xs.value + r0 * k, k, r1 - r0, k, wp.value, n, bs.value, cs.value + r0 * n, n)
                }
            } else {
                Parallel.forEach(0..<panels, chunks: parallel ? min(panels, 4 * Parallel.coreCount) : 1) { range in
                    let col = range.lowerBound * 16, cols = min(range.count * 16, n - col)
                    ck_gemm_packed(xs.value, k, m, k, wp.value + col * k, cols, bs.value.map { $0 + col },
                                   cs.value + col, n)
                }
            }
        }
    }
}
