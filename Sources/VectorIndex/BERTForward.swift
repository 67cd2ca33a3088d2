import CKernels
import Foundation
import Tensor

// Dimensions: B sequences in a batch; T one sequence's length; N total tokens of the batch;
// C hidden; F feed-forward inner; NH heads; HS = C / NH head size.
//
// Sequences are packed back to back, (N, C) with N = Σ T_b, never padded: every op but attention
// is per token, and attention runs per sequence over its own T_b tokens. That is exactly BERT
// with an attention mask (masked keys get probability 0) without computing padded positions.

/// The BERT encoder forward pass (inference only) on packed sequences.
public final class BERTEncoder: Sendable {
    /// The model configuration.
    public let config: BERTConfig
    /// Embeddings and norms; the linear weights are emptied here and live packed in `packed`.
    private let weights: BERTWeights
    /// Per layer: the QKV, attention output, intermediate and output weights, packed for
    /// ``BLAS/gemm(x:rows:packed:bias:c:)``.
    private let packed: [(qkv: PackedMatrix, attentionOutput: PackedMatrix, intermediate: PackedMatrix, output: PackedMatrix)]

    /// Wraps loaded weights, packing the linear ones once (the same memory as before).
    /// - Parameters:
    ///   - config: the configuration the weights were checked against.
    ///   - weights: the weights.
    public init(config: BERTConfig, weights: BERTWeights) {
        let c = config.hiddenSize, f = config.intermediateSize
        self.config = config
        packed = weights.layers.map { l in
            (PackedMatrix(l.qkvWeight, rows: 3 * c, columns: c), PackedMatrix(l.attentionOutputWeight, rows: c, columns: c),
             PackedMatrix(l.intermediateWeight, rows: f, columns: c), PackedMatrix(l.outputWeight, rows: c, columns: f))
        }
        var rest = weights
        for i in rest.layers.indices {
            rest.layers[i].qkvWeight = []; rest.layers[i].attentionOutputWeight = []
            rest.layers[i].intermediateWeight = []; rest.layers[i].outputWeight = []
        }
        self.weights = rest
    }

    // MARK: Forward

    /// Runs the encoder on a batch.
    /// - Parameter sequences: B id sequences, each 1…P long with ids < V (token type 0 throughout).
    /// - Returns: `(N, C)` final hidden states; sequence b occupies rows `Σ_{i<b} T_i ..< Σ_{i≤b} T_i`.
    public func forward(_ sequences: [[Int32]]) -> [Float] {
        let c = config.hiddenSize, f = config.intermediateSize
        for s in sequences {
            precondition(!s.isEmpty && s.count <= config.maxPositionEmbeddings, "sequence length \(s.count) outside 1…\(config.maxPositionEmbeddings)")
        }
        let lengths = sequences.map(\.count)
        let offsets = lengths.reduce(into: [0]) { $0.append($0.last! + $1) }  // (B + 1)
        let n = offsets.last!
        let act = BERTActivations(tokens: n, hidden: c, inner: f)
        embed(out: act.x, sequences: sequences, offsets: offsets)
        for (layer, w) in zip(weights.layers, packed) {
            // Attention block: x = LN(x + (softmax(Q Kᵀ / √HS) V) Woᵀ + bo)
            linear(out: act.qkv, input: act.x, weight: w.qkv, bias: layer.qkvBias, rows: n)
            attention(out: act.ctx, qkv: act.qkv, lengths: lengths, offsets: offsets)
            linear(out: act.tmp, input: act.ctx, weight: w.attentionOutput, bias: layer.attentionOutputBias, rows: n)
            layerNorm(x: act.x, residual: act.tmp, norm: layer.attentionNorm, rows: n)
            // Feed-forward block: x = LN(x + GELU(x W1ᵀ + b1) W2ᵀ + b2)
            linear(out: act.ff, input: act.x, weight: w.intermediate, bias: layer.intermediateBias, rows: n)
            Self.gelu(act.ff, count: n * f)
            linear(out: act.tmp, input: act.ff, weight: w.output, bias: layer.outputBias, rows: n)
            layerNorm(x: act.x, residual: act.tmp, norm: layer.outputNorm, rows: n)
        }
        return Array(UnsafeBufferPointer(start: act.x, count: n * c))
    }

    /// Runs the encoder and mean-pools each sequence's hidden states, then L2-normalizes.
    /// - Parameter sequences: B id sequences as for ``forward(_:)``.
    /// - Returns: B unit vectors of length C.
    public func meanPooledEmbeddings(_ sequences: [[Int32]]) -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        let c = config.hiddenSize
        let hidden = forward(sequences)  // (N, C)
        var offset = 0
        return sequences.map { s in
            var v = [Float](repeating: 0, count: c)
            for t in 0..<s.count { for j in 0..<c { v[j] += hidden[(offset + t) * c + j] } }
            offset += s.count
            // mean, then v / max(‖v‖, 1e-12) as torch.nn.functional.normalize (the 1/T cancels).
            let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12 * Float(s.count))
            return v.map { $0 / norm }
        }
    }

    // MARK: Embeddings

    /// `x[n] = LN(word[id] + position[t] + tokenType[0])`.
    private func embed(out x: UnsafeMutablePointer<Float>, sequences: [[Int32]], offsets: [Int]) {
        let c = config.hiddenSize
        weights.wordEmbeddings.withUnsafeBufferPointer { word in          // (V, C)
            weights.positionEmbeddings.withUnsafeBufferPointer { pos in   // (P, C)
                weights.tokenTypeEmbeddings.withUnsafeBufferPointer { type in  // (types, C)
                    for (b, s) in sequences.enumerated() {
                        for (t, id) in s.enumerated() {
                            precondition(id >= 0 && Int(id) < config.vocabSize, "token id \(id) outside the vocabulary")
                            let row = x + (offsets[b] + t) * c
                            for j in 0..<c { row[j] = word[Int(id) * c + j] + pos[t * c + j] + type[j] }
                        }
                    }
                }
            }
        }
        layerNorm(x: x, residual: nil, norm: weights.embeddingNorm, rows: offsets.last!)
    }

    // MARK: Linear

    /// `out (rows, N) = input (rows, K) · weightᵀ + bias` for a packed `(N, K)` weight.
    private func linear(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: PackedMatrix, bias: [Float],
                        rows: Int) {
        bias.withUnsafeBufferPointer { b in
            BLAS.gemm(x: input, rows: rows, packed: weight, bias: b.baseAddress!, c: out)
        }
    }

    // MARK: Attention

    /// `ctx (N, C)`: per sequence and head, `softmax(Q Kᵀ / √HS) V`, heads side by side.
    ///
    /// The (sequence, head) pairs are independent: they are shared out over the cores, each
    /// worker with its own `(T, T)` score buffer and single-threaded BLAS calls.
    /// - Parameters:
    ///   - out: `(N, C)` context, written.
    ///   - qkv: `(N, 3C)` with Q in columns `0..<C`, K in `C..<2C`, V in `2C..<3C`; head h at `h·HS` within each.
    ///   - lengths: `(B)` sequence lengths.
    ///   - offsets: `(B + 1)` first row of each sequence.
    private func attention(out: UnsafeMutablePointer<Float>, qkv: UnsafeMutablePointer<Float>, lengths: [Int], offsets: [Int]) {
        let c = config.hiddenSize, nh = config.numAttentionHeads, hs = config.headSize
        let scale = 1 / Float(hs).squareRoot()
        let maxT = lengths.max() ?? 0
        let pairs = lengths.count * nh
        // Several chunks per core: sequences are sorted longest first, so equal-sized chunks of
        // pairs differ in cost; more, smaller chunks let the faster worker take up the slack.
        // With AVX2 + FMA, K·scale and V are packed into 16-wide panels and both products run in
        // `ck_gemm_packed` (what `sgemm` would pack anyway, without its per-call overheads).
        let packedPath = ck_has_avx2_fma() != 0
        let panelT = (maxT + 15) / 16 * 16, panelHS = (hs + 15) / 16 * 16
        Parallel.forEach(0..<pairs, chunks: Parallel.coreCount * 8) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: maxT * maxT)  // (T, T)
            let kp = UnsafeMutablePointer<Float>.allocate(capacity: panelT * hs)       // K_h · scale, packed
            let vp = UnsafeMutablePointer<Float>.allocate(capacity: panelHS * maxT)    // V_hᵀ, packed
            defer { scores.deallocate(); kp.deallocate(); vp.deallocate() }
            for pair in range {
                let b = pair / nh, h = pair % nh, t = lengths[b]
                let q = qkv + offsets[b] * 3 * c + h * hs  // (T, HS) with row stride 3C
                let ctx = out + offsets[b] * c + h * hs
                if packedPath {
                    ck_pack_panels16(q + c, t, hs, 3 * c, kp)
                    VectorMath.scale(kp, count: (t + 15) / 16 * 16 * hs, by: scale)
                    // S (T, T) = Q_h · (K_h / √HS)ᵀ
                    ck_gemm_packed(q, 3 * c, t, hs, kp, t, nil, scores, t)
                    _ = ck_softmax_rows(scores, t, t, t)
                    // ctx_h (T, HS) = P (T, T) · V_h (T, HS), written into columns h·HS of ctx.
                    ck_pack_panels16_t(q + 2 * c, t, hs, 3 * c, vp)
                    ck_gemm_packed(scores, t, t, t, vp, hs, nil, ctx, c)
                } else {
                    BLAS.gemm(a: q, lda: 3 * c, b: q + c, transB: true, ldb: 3 * c, c: scores, m: t, n: t, k: hs, alpha: scale)
                    for r in 0..<t { VectorMath.softmax(scores + r * t, count: t) }
                    BLAS.gemm(a: scores, b: q + 2 * c, ldb: 3 * c, c: ctx, ldc: c, m: t, n: hs, k: t)
                }
            }
        }
    }

    // MARK: Elementwise

    /// `x = LN(x + residual)` row by row (or `LN(x)` without a residual), biased variance, eps from config.
    private func layerNorm(x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, norm: BERTLayerNorm, rows: Int) {
        let c = config.hiddenSize, eps = config.layerNormEps
        norm.weight.withUnsafeBufferPointer { w in
            norm.bias.withUnsafeBufferPointer { b in
                let w = w.baseAddress!, b = b.baseAddress!
                Parallel.forEach(0..<rows, chunks: rows >= 64 ? Parallel.coreCount : 1) { range in
                    for r in range {
                        let row = x + r * c
                        if let residual {
                            let res = residual + r * c
                            for j in 0..<c { row[j] += res[j] }
                        }
                        let mean = VectorMath.sum(row, count: c) / Float(c)
                        var sq = SIMD8<Float>(), j = 0
                        while j + 8 <= c { let d = VectorMath.load8(row + j) - mean; sq += d * d; j += 8 }
                        var variance = sq.sum()
                        while j < c { let d = row[j] - mean; variance += d * d; j += 1 }
                        let rstd = 1 / (variance / Float(c) + eps).squareRoot()
                        for j in 0..<c { row[j] = (row[j] - mean) * rstd * w[j] + b[j] }
                    }
                }
            }
        }
    }

    /// GELU, erf form: `x · ½ (1 + erf(x / √2))`, in place, on all cores.
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let blocks = count / 8
        if ck_has_avx2_fma() != 0 {   // the same polynomial in AVX2 + FMA (CKernels)
            Parallel.forEach(0..<blocks, chunks: blocks >= 4096 ? Parallel.coreCount : 1) { range in
                let end = range.upperBound == blocks ? count : range.upperBound * 8
                _ = ck_gelu_erf(x + range.lowerBound * 8, end - range.lowerBound * 8)
            }
            if blocks == 0 { _ = ck_gelu_erf(x, count) }
            return
        }
        Parallel.forEach(0..<blocks, chunks: blocks >= 4096 ? Parallel.coreCount : 1) { range in
            for i in range {
                let v = VectorMath.load8(x + i * 8)
                VectorMath.store8(v * 0.5 * (1 + VectorMath.erf(v * 0.707_106_781_186_547_6)), x + i * 8)
            }
        }
        for i in (blocks * 8)..<count {
            let v = SIMD8<Float>(repeating: x[i])
            x[i] = (v * 0.5 * (1 + VectorMath.erf(v * 0.707_106_781_186_547_6)))[0]
        }
    }
}

/// The activation buffers of one forward pass; freed in `deinit`.
final class BERTActivations {
    /// `(N, C)` hidden state.
    let x: UnsafeMutablePointer<Float>
    /// `(N, 3C)` fused Q, K, V.
    let qkv: UnsafeMutablePointer<Float>
    /// `(N, C)` attention context.
    let ctx: UnsafeMutablePointer<Float>
    /// `(N, C)` block output before the residual.
    let tmp: UnsafeMutablePointer<Float>
    /// `(N, F)` feed-forward inner activations.
    let ff: UnsafeMutablePointer<Float>

    init(tokens n: Int, hidden c: Int, inner f: Int) {
        x = .allocate(capacity: n * c)
        qkv = .allocate(capacity: n * 3 * c)
        ctx = .allocate(capacity: n * c)
        tmp = .allocate(capacity: n * c)
        ff = .allocate(capacity: n * f)
    }

    deinit {
        x.deallocate(); qkv.deallocate(); ctx.deallocate(); tmp.deallocate(); ff.deallocate()
    }
}
