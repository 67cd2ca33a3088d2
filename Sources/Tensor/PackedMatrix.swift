import CKernels

/// A weight `W (N, K)` (a PyTorch `Linear` weight, `(out, in)`) packed once into panels of 16
/// rows for ``BLAS/gemm(x:rows:packed:bias:c:)``, which then reads the activations in place and
/// never copies W again: `sgemm` repacks its operands on every call.
///
/// Layout: element `j` of row `16p + l` is at `panels[(p · K + j) · 16 + l]`; the missing rows
/// of the last panel are zero. Memory: `⌈N / 16⌉ · 16 · K` floats, the size of W plus at most
/// 15 rows.
public struct PackedMatrix: Sendable {
    /// How the panels store W.
    public enum Format: String, Sendable {
        /// float32: `BLAS.gemm` sums in float32, like `sgemm` (another summation order).
        case float32
        /// bfloat16 (W and, per call, X rounded to 8 significant bits; float32 sums): half the
        /// memory and twice the multiply-adds per instruction on CPUs with AVX-512 BF16
        /// (``bfloat16IsNative``), a slow scalar loop elsewhere. About 3 significant digits per
        /// product, so an opt-in speed mode.
        case bfloat16
    }

    /// N, the output features.
    public let rows: Int
    /// K, the input features.
    public let columns: Int
    public let format: Format
    /// The float32 panels (`.float32`), else empty.
    let panels: [Float]
    /// The bfloat16 panels (`.bfloat16`, layout of `ck_pack_panels16_bf16`), else empty.
    let halfPanels: [UInt16]

    /// Whether this CPU has the AVX-512 BF16 instructions the `.bfloat16` kernel is written for.
    public static var bfloat16IsNative: Bool { ck_has_avx512_bf16() != 0 }

    /// Packs `w (rows, columns)`, row-major.
    public init(_ w: UnsafePointer<Float>, rows: Int, columns: Int, format: Format = .float32) {
        self.init(rows: rows, columns: columns, format: format, step: rows) { start, _ in w + start * columns }
    }

    /// Packs a weight whose rows `fill` writes (row-major, float32) `chunk` rows at a time into
    /// a scratch buffer, so a large weight never exists whole in float32 (a 262,144-row
    /// embedding head is 671 MB as float32, 335 MB packed as bfloat16).
    public init(rows: Int, columns: Int, format: Format = .float32, chunk: Int = 8192,
                fill: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let step = max(16, chunk / 16 * 16)
        // Sized with care for bad dimensions: the designated init's precondition names them.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(0, min(step, rows) * columns))
        defer { scratch.deallocate() }
        self.init(rows: rows, columns: columns, format: format, step: step) { start, n in
            fill(start..<(start + n), scratch)
            return UnsafePointer(scratch)
        }
    }

    /// Packs rows `start..<start+n` for each `start` in steps of `step` (a multiple of 16, or all
    /// rows at once) from the row-major rows `source(start, n)` returns.
    private init(rows: Int, columns: Int, format: Format, step: Int,
                 source: (_ start: Int, _ n: Int) -> UnsafePointer<Float>) {
        precondition(rows > 0 && columns > 0, "PackedMatrix: empty weight \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.format = format
        func each(_ pack: (UnsafePointer<Float>, Int, Int) -> Void) {
            for start in stride(from: 0, to: rows, by: step) {
                let n = min(step, rows - start)
                pack(source(start, n), start, n)
            }
        }
        switch format {
        case .float32:
            panels = [Float](unsafeUninitializedCapacity: (rows + 15) / 16 * 16 * columns) { buf, count in
                each { w, start, n in ck_pack_panels16(w, n, columns, columns, buf.baseAddress! + start * columns) }
                count = buf.count
            }
            halfPanels = []
        case .bfloat16:
            let k2 = (columns + 1) / 2 * 2
            panels = []
            halfPanels = [UInt16](unsafeUninitializedCapacity: ck_bf16_panel_elements(rows, columns)) { buf, count in
                each { w, start, n in ck_pack_panels16_bf16(w, n, columns, columns, buf.baseAddress! + start * k2) }
                count = buf.count
            }
        }
    }

    /// Packs a row-major array of `rows · columns` values.
    public init(_ w: [Float], rows: Int, columns: Int, format: Format = .float32) {
        precondition(w.count == rows * columns, "PackedMatrix: \(w.count) values for \(rows)×\(columns)")
        self = w.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: rows, columns: columns, format: format) }
    }

    /// Bytes of panel storage.
    public var bytes: Int { panels.count * 4 + halfPanels.count * 2 }
}

extension BLAS {
    /// `C (M, N) = X (M, K) · Wᵀ (+ bias (N))` with `W` packed ahead of time, split over all cores
    /// by rows of X or panels of W, whichever is larger, when large (``parallelThreshold``).
    /// `ck_gemm_packed`: tiles of 6 rows × 16 columns in AVX2 + FMA registers (a scalar loop on
    /// CPUs without them). Results agree with `gemm(transB: true)` to float rounding (another
    /// summation order). A `.bfloat16` matrix goes through `ck_gemm_packed_bf16` (X rounded to
    /// bfloat16 too; tiles of 8 rows × 32 columns with AVX-512 BF16).
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
        packed.panels.withUnsafeBufferPointer { f32 in packed.halfPanels.withUnsafeBufferPointer { bf16 in
            let xs = UncheckedSendable(x), cs = UncheckedSendable(c), bs = UncheckedSendable(bias)
            let w = UncheckedSendable((f32.baseAddress, bf16.baseAddress)), format = packed.format, k2 = (k + 1) / 2 * 2
            // One call of the format's kernel: rows of X against the panels from column `col` on.
            @Sendable func run(_ x: UnsafePointer<Float>, _ m: Int, col: Int, cols: Int, _ c: UnsafeMutablePointer<Float>) {
                let b = bs.value.map { $0 + col }
                switch format {
                case .float32: ck_gemm_packed(x, k, m, k, w.value.0! + col * k, cols, b, c, n)
                case .bfloat16: ck_gemm_packed_bf16(x, k, m, k, w.value.1! + col * k2, cols, b, c, n)
                }
            }
            // Pieces share out the larger operand, so it is read once in all: whole 6-row tiles of
            // X (a long batch of tokens) or whole 16-column panels of W (prompts and decode steps
            // of a few hundred rows or fewer). A few pieces per core so uneven progress evens out.
            let tiles = (m + 5) / 6, panels = (n + 15) / 16
            let parallel = m * n * k >= parallelThreshold
            if m > n {
                Parallel.forEach(0..<tiles, chunks: parallel ? min(tiles, 4 * Parallel.coreCount) : 1) { range in
                    let r0 = range.lowerBound * 6, r1 = min(m, range.upperBound * 6)
                    run(xs.value + r0 * k, r1 - r0, col: 0, cols: n, cs.value + r0 * n)
                }
            } else {
                Parallel.forEach(0..<panels, chunks: parallel ? min(panels, 4 * Parallel.coreCount) : 1) { range in
                    let col = range.lowerBound * 16, cols = min(range.count * 16, n - col)
                    run(xs.value, m, col: col, cols: cols, cs.value + col)
                }
            }
        } }
    }
}
