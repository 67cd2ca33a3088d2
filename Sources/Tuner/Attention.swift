import Foundation
import Tensor

// Causal grouped-query attention, forward and backward (dimension letters as in Ops.swift).

/// The shape of one attention call.
public struct AttentionDims: Sendable {
    /// Batch, time, query heads, key/value heads, head size.
    public var b: Int, t: Int, nh: Int, nkv: Int, hs: Int
    /// The sliding window: position i sees j when `i − window < j ≤ i` (`nil`: every j ≤ i).
    public var window: Int?
    /// Scores are `q·k · scale`.
    public var scale: Float
    /// - Parameters: b batch; t time; nh query heads; nkv key/value heads (divides nh); hs head size;
    ///   window: the sliding window (nil: plain causal); scale: the score scale (default 1/sqrt(HS)).
    public init(b: Int, t: Int, nh: Int, nkv: Int, hs: Int, window: Int? = nil, scale: Float? = nil) {
        precondition(nkv > 0 && nh % nkv == 0, "attention: NH=\(nh) not a multiple of NKV=\(nkv)")
        precondition(window.map { $0 > 0 } ?? true, "attention: window must be positive")
        self.b = b; self.t = t; self.nh = nh; self.nkv = nkv; self.hs = hs
        self.window = window
        self.scale = scale ?? 1 / Float(hs).squareRoot()
    }
    /// The first key position query `i` sees.
    @inline(__always) public func first(_ i: Int) -> Int { window.map { max(0, i - $0 + 1) } ?? 0 }
    /// Rows per block of the blocked causal products.
    public static let blockRows = 64
    /// The causal blocks `(r0, r1, c0)`: query rows `r0..<r1` see only keys `c0..<r1` (`c0` the
    /// first key of row `r0`), so the products skip the masked upper triangle (and, with a window,
    /// the keys left of it) block by block.
    public func blocks() -> [(Int, Int, Int)] {
        stride(from: 0, to: t, by: Self.blockRows).map { r0 in (r0, min(t, r0 + Self.blockRows), first(r0)) }
    }
    /// Query heads per key/value head.
    public var group: Int { nh / nkv }
    /// Elements of the saved probabilities `(B, NH, T, T)`.
    public var attCount: Int { b * nh * t * t }
}

extension Ops {
    // MARK: Attention

    /// `out_h = softmax(mask(q_h · k_gᵀ · scale)) · v_g` for every batch row and query head `h`, with
    /// `g = h / (NH/NKV)` its key/value head and the causal mask (position i sees j ≤ i), narrowed
    /// to a sliding window when `dims.window` is set (i sees j when i − window < j ≤ i). The products
    /// run per block of ``AttentionDims/blockRows`` query rows against only the keys the block sees.
    /// - Parameters: out `(B, T, NH, HS)`; att `(B, NH, T, T)` saved probabilities (zero where
    ///   masked); q `(B, T, NH, HS)`; k, v `(B, T, NKV, HS)`.
    public static func attentionForward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                        dims d: AttentionDims) {
        let t = d.t, hs = d.hs, qs = d.nh * hs, kvs = d.nkv * hs, scale = d.scale
        Parallel.forEachIndex(0..<(d.b * d.nh)) { task in
            let b = task / d.nh, h = task % d.nh, g = h / d.group
            let p = att + (b * d.nh + h) * t * t                     // (T, T)
            let qh = q + b * t * qs + h * hs, kg = k + b * t * kvs + g * hs, vg = v + b * t * kvs + g * hs
            for (r0, r1, c0) in d.blocks() {
                // Scores of rows r0..<r1 against the keys they can see, c0..<r1.
                BLAS.gemm(a: qh + r0 * qs, lda: qs, b: kg + c0 * kvs, transB: true, ldb: kvs, c: p + r0 * t + c0, ldc: t,
                          m: r1 - r0, n: r1 - c0, k: hs, alpha: scale)
                for i in r0..<r1 {
                    let row = p + i * t, first = d.first(i)
                    VectorMath.softmax(row + first, count: i - first + 1)
                    if first > 0 { row.update(repeating: 0, count: first) }
                    if i + 1 < t { (row + i + 1).update(repeating: 0, count: t - i - 1) }
                }
                BLAS.gemm(a: p + r0 * t + c0, lda: t, b: vg + c0 * kvs, ldb: kvs, c: out + b * t * qs + r0 * qs + h * hs,
                          ldc: qs, m: r1 - r0, n: hs, k: r1 - c0)
            }
        }
    }

    /// Backward of ``attentionForward``: `dq += …`, `dk += …`, `dv += …`. With `dP = dout_h · v_gᵀ`
    /// and `dS = P ⊙ (dP − rowsum(P ⊙ dP))`: `dv_g += Pᵀ · dout_h`, `dq_h += dS · k_g · scale`,
    /// `dk_g += dSᵀ · q_h · scale` (masked entries have P = 0, so dS = 0 there). Work is split by (batch, key/value head) so the query heads that
    /// share a key/value head accumulate on one thread.
    /// - Parameters: dq `(B, T, NH, HS)`; dk, dv `(B, T, NKV, HS)`; dout `(B, T, NH, HS)`;
    ///   att `(B, NH, T, T)` from the forward; q, k, v as in the forward.
    public static func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                         dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         att: UnsafePointer<Float>, q: UnsafePointer<Float>,
                                         k: UnsafePointer<Float>, v: UnsafePointer<Float>, dims d: AttentionDims) {
        let t = d.t, hs = d.hs, qs = d.nh * hs, kvs = d.nkv * hs, scale = d.scale
        Parallel.forEachIndex(0..<(d.b * d.nkv)) { task in
            let b = task / d.nkv, g = task % d.nkv
            let ds = UnsafeMutablePointer<Float>.allocate(capacity: t * t)   // (T, T) dP then dS
            defer { ds.deallocate() }
            let kg = k + b * t * kvs + g * hs, vg = v + b * t * kvs + g * hs
            let dkg = dk + b * t * kvs + g * hs, dvg = dv + b * t * kvs + g * hs
            for h in (g * d.group)..<((g + 1) * d.group) {
                let p = att + (b * d.nh + h) * t * t
                let qh = q + b * t * qs + h * hs, dqh = dq + b * t * qs + h * hs, doh = dout + b * t * qs + h * hs
                for (r0, r1, c0) in d.blocks() {
                    let rows = r1 - r0, cols = r1 - c0
                    let pb = p + r0 * t + c0, db = ds + r0 * t + c0
                    BLAS.gemm(a: doh + r0 * qs, lda: qs, b: vg + c0 * kvs, transB: true, ldb: kvs, c: db, ldc: t,
                              m: rows, n: cols, k: hs)
                    BLAS.gemm(a: pb, transA: true, lda: t, b: doh + r0 * qs, ldb: qs, c: dvg + c0 * kvs, ldc: kvs,
                              m: cols, n: hs, k: rows, beta: 1)
                    for i in r0..<r1 {
                        let pr = p + i * t, dr = ds + i * t, first = d.first(i)
                        let dot = VectorMath.dot(pr + first, dr + first, count: i - first + 1)
                        for j in c0..<first { dr[j] = 0 }
                        for j in first...i { dr[j] = pr[j] * (dr[j] - dot) }
                        for j in (i + 1)..<r1 { dr[j] = 0 }
                    }
                    BLAS.gemm(a: db, lda: t, b: kg + c0 * kvs, ldb: kvs, c: dqh + r0 * qs, ldc: qs,
                              m: rows, n: hs, k: cols, alpha: scale, beta: 1)
                    BLAS.gemm(a: db, transA: true, lda: t, b: qh + r0 * qs, ldb: qs, c: dkg + c0 * kvs, ldc: kvs,
                              m: cols, n: hs, k: rows, alpha: scale, beta: 1)
                }
            }
        }
    }
}
