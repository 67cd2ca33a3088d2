import CKernels
import COpenBLAS

/// A thin, labelled wrapper over OpenBLAS's single-precision `sgemm` and `sgemv`.
///
/// Every matrix is **row-major**. Dimension letters, used the same way in every call:
/// - `M`: rows of `op(A)` and of `C`
/// - `N`: columns of `op(B)` and of `C`
/// - `K`: the shared (summed) dimension
///
/// `op(X)` is `X` or `Xᵀ` depending on the `trans…` flag. A leading dimension (`lda`, `ldb`,
/// `ldc`) is the distance in elements between the starts of two consecutive stored rows; it
/// defaults to the packed value and can be larger to address a column slice of a wider matrix
/// (for example one attention head inside a fused `(T, 3C)` QKV buffer).
///
/// A PyTorch `Linear` stores its weight as `(out, in)`, so `Y = X Wᵀ + b` is
/// `gemm(a: X, b: W, transB: true, c: Y, m: rows, n: out, k: in)`.
///
/// **Threads.** This module pins OpenBLAS to one thread (on first use): every call runs on the
/// calling thread, and calls from several threads run truly in parallel. Parallelism is ours:
/// pass `parallel: true` to split one large product over ``Parallel/coreCount`` threads, or call
/// many small products from ``Parallel`` workers. Why: OpenBLAS's own threading made the small
/// per-head attention GEMMs (256×256×32) 5–8× slower than one thread (thread wake-ups per call),
/// and several callers contend for its single thread pool.
public enum BLAS {
    // MARK: Threads

    /// Pins OpenBLAS to one thread, once, before the first call (see the type's notes).
    private static let pinned: Void = openblas_set_num_threads(1)

    /// The number of threads OpenBLAS itself uses for one call (process-wide; 1 unless changed).
    ///
    /// Raising it makes OpenBLAS split large products itself; leave it at 1 when calling from
    /// ``Parallel`` workers or with `parallel: true`.
    public static var openBLASThreads: Int {
        get { _ = pinned; return Int(openblas_get_num_threads()) }
        set { _ = pinned; openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// Products with fewer multiply-adds than this stay on one thread even with `parallel: true`.
    public static let parallelThreshold = 1 << 20

    // MARK: GEMM

    /// `C = alpha · op(A) · op(B) + beta · C`.
    ///
    /// - Parameters:
    ///   - a: `A`, stored `(M, K)`, or `(K, M)` when `transA` is `true`.
    ///   - transA: use `Aᵀ`.
    ///   - lda: leading dimension of `A` as stored; defaults to its packed row length.
    ///   - b: `B`, stored `(K, N)`, or `(N, K)` when `transB` is `true`.
    ///   - transB: use `Bᵀ`.
    ///   - ldb: leading dimension of `B` as stored; defaults to its packed row length.
    ///   - c: `C (M, N)`, read when `beta != 0`, always written.
    ///   - ldc: leading dimension of `C`; defaults to `N`.
    ///   - m: rows of `op(A)` and `C`.
    ///   - n: columns of `op(B)` and `C`.
    ///   - k: columns of `op(A)`, rows of `op(B)`.
    ///   - alpha: scale of the product.
    ///   - beta: scale of the existing `C`; `0` ignores its contents (even NaN).
    ///   - parallel: split `C` into row (or, when `M` is small, column) blocks computed on all
    ///     cores; the result is the same as one call up to float rounding.
    public static func gemm(a: UnsafePointer<Float>, transA: Bool = false, lda: Int? = nil,
                            b: UnsafePointer<Float>, transB: Bool = false, ldb: Int? = nil,
                            c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
                            m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0, parallel: Bool = false) {
        _ = pinned
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative dimension m=\(m) n=\(n) k=\(k)")
        guard m > 0, n > 0 else { return }
        let packedA = transA ? m : k, packedB = transB ? k : n
        let lda = lda ?? max(1, packedA), ldb = ldb ?? max(1, packedB), ldc = ldc ?? n
        precondition(lda >= packedA && ldb >= packedB && ldc >= n,
                     "gemm: leading dimension too small (lda=\(lda) ldb=\(ldb) ldc=\(ldc) m=\(m) n=\(n) k=\(k))")
        precondition(max(m, n, k, lda, ldb, ldc) <= Int(Int32.max), "gemm: dimension exceeds Int32")
        func call(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ m: Int, _ n: Int) {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        let pieces = Parallel.coreCount
        guard parallel, pieces > 1, m * n * k >= parallelThreshold, max(m, n) >= 2 * pieces else {
            return call(a, b, c, m, n)
        }
        // Blocks of 16 rows/columns keep the BLAS micro-kernels on full tiles.
        if m >= n || m >= 16 * pieces {
            let block = ((m + pieces - 1) / pieces + 15) / 16 * 16
            Parallel.forEach(0..<((m + block - 1) / block)) { range in
                for i in range {
                    let r = i * block, rows = min(block, m - r)
                    call(transA ? a + r : a + r * lda, b, c + r * ldc, rows, n)
                }
            }
        } else {
            let block = ((n + pieces - 1) / pieces + 15) / 16 * 16
            Parallel.forEach(0..<((n + block - 1) / block)) { range in
                for j in range {
                    let col = j * block, cols = min(block, n - col)
                    call(a, transB ? b + col * ldb : b + col, c + col, m, cols)
                }
            }
        }
    }

    /// `C (M, N) = X (M, K) · Wᵀ` for weights `W (N, K)`, all row-major and packed, on all cores.
    ///
    /// For steps of at most ``fewRowsLimit`` rows (batched decode) on CPUs with AVX2 + FMA this
    /// runs `ck_gemm_nt`, which reads W in place: OpenBLAS copies (packs) the whole of W on every
    /// call, as long as the multiply itself when M is a few dozen. Otherwise `gemm(transB: true)`.
    /// Results agree with `gemm` to float rounding (another summation order).
    public static func gemmFewRows(x: UnsafePointer<Float>, w: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                                   m: Int, n: Int, k: Int) {
        guard m <= fewRowsLimit, ck_has_avx2_fma() != 0 else {
            return gemm(a: x, b: w, transB: true, c: c, m: m, n: n, k: k, parallel: true)
        }
        guard m > 0, n > 0 else { return }
        // Pieces of 64 weight rows: whole L2-sized blocks, several per core for balance.
        let pieces = m * n * k >= parallelThreshold ? min((n + 63) / 64, 4 * Parallel.coreCount) : 1
        Parallel.forEach(0..<n, chunks: pieces) { rows in
            ck_gemm_nt(x, m, w + rows.lowerBound * k, rows.count, k, c + rows.lowerBound, n)
        }
    }

    /// The most rows ``gemmFewRows(x:w:c:m:n:k:)`` multiplies itself.
    public static let fewRowsLimit = 64

    /// `C = alpha · op(A) · op(B) + beta · C` on arrays with packed layouts.
    ///
    /// - Parameters: as ``gemm(a:transA:lda:b:transB:ldb:c:ldc:m:n:k:alpha:beta:parallel:)``; the arrays
    ///   must hold at least `M·K`, `K·N` and `M·N` elements.
    public static func gemm(a: [Float], transA: Bool = false, b: [Float], transB: Bool = false,
                            c: inout [Float], m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
                            parallel: Bool = false) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n,
                     "gemm: array too small for m=\(m) n=\(n) k=\(k) (a \(a.count), b \(b.count), c \(c.count))")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gemm(a: pa.baseAddress!, transA: transA, b: pb.baseAddress!, transB: transB,
                         c: pc.baseAddress!, m: m, n: n, k: k, alpha: alpha, beta: beta, parallel: parallel)
                }
            }
        }
    }

    // MARK: GEMV

    /// `y = alpha · op(A) · x + beta · y` with `A` stored `(M, N)`.
    ///
    /// - Parameters:
    ///   - a: `A`, stored `(M, N)` row-major.
    ///   - trans: use `Aᵀ`; then `x` has `M` elements and `y` has `N`.
    ///   - lda: leading dimension of `A`; defaults to `N`.
    ///   - x: `(N)`, or `(M)` when `trans`.
    ///   - y: `(M)`, or `(N)` when `trans`; read when `beta != 0`.
    ///   - m: stored rows of `A`.
    ///   - n: stored columns of `A`.
    ///   - alpha: scale of the product.
    ///   - beta: scale of the existing `y`.
    ///   - parallel: split `y` into blocks computed on all cores.
    public static func gemv(a: UnsafePointer<Float>, trans: Bool = false, lda: Int? = nil,
                            x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            m: Int, n: Int, alpha: Float = 1, beta: Float = 0, parallel: Bool = false) {
        _ = pinned
        precondition(m >= 0 && n >= 0, "gemv: negative dimension m=\(m) n=\(n)")
        guard m > 0, n > 0 else { return }
        let lda = lda ?? n
        precondition(lda >= n, "gemv: lda=\(lda) < n=\(n)")
        precondition(max(m, n, lda) <= Int(Int32.max), "gemv: dimension exceeds Int32")
        func call(_ a: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ m: Int, _ n: Int) {
            cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n),
                        alpha, a, Int32(lda), x, 1, beta, y, 1)
        }
        let outputs = trans ? n : m, pieces = Parallel.coreCount
        guard parallel, pieces > 1, m * n >= parallelThreshold / 4, outputs >= 2 * pieces else {
            return call(a, y, m, n)
        }
        let block = ((outputs + pieces - 1) / pieces + 15) / 16 * 16
        Parallel.forEach(0..<((outputs + block - 1) / block)) { range in
            for i in range {
                let start = i * block, count = min(block, outputs - start)
                // Without trans, outputs are rows of A; with trans, columns of A.
                if trans { call(a + start, y + start, m, count) } else { call(a + start * lda, y + start, count, n) }
            }
        }
    }
}
