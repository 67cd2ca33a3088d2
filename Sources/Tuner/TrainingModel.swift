import Foundation
import Tensor

// The training forward and hand-written backward of a Llama, Qwen2 or Gemma 3 model with LoRA
// adapters (llm.c's `gpt2_forward` / `gpt2_backward`). The base weights are frozen; only LoRA
// gradients are formed. Dimension letters as in Ops.swift; N = B·T rows, QW = NH·HS.
//
// Gemma 3's block, as the runtime's `Gemma3Model` computes it (the Llama block lacks the starred
// parts; Qwen2's is Llama's plus the frozen biases +bq, +bk, +bv on q, k, v, which change no gradient):
//   h = norm(x); q = *qnorm*(Wq h); k = *knorm*(Wk h); v = Wv h; rope(q, k)
//   x' = x + *postnorm*(Wo attention(q, k, v))            (* sliding window on local layers)
//   x'' = x' + *postnorm*(Wdown (act(Wgate norm(x')) · Wup norm(x')))   act = silu or *gelu_tanh*

/// Saved activations of one block, views into ``TrainingModel``'s activation allocation.
struct BlockActivations {
    var ln1: UnsafeMutablePointer<Float>        // (N, C)
    var rstd1: UnsafeMutablePointer<Float>      // (N)
    var q: UnsafeMutablePointer<Float>          // (N, QW) after (q norm and) RoPE
    var k: UnsafeMutablePointer<Float>          // (N, KV) after (k norm and) RoPE
    var v: UnsafeMutablePointer<Float>          // (N, KV)
    var att: UnsafeMutablePointer<Float>        // (B, NH, T, T)
    var atty: UnsafeMutablePointer<Float>       // (N, QW) attention output, input of o
    var resid2: UnsafeMutablePointer<Float>     // (N, C) residual after attention
    var ln2: UnsafeMutablePointer<Float>        // (N, C)
    var rstd2: UnsafeMutablePointer<Float>      // (N)
    var gate: UnsafeMutablePointer<Float>       // (N, F)
    var up: UnsafeMutablePointer<Float>         // (N, F)
    var swi: UnsafeMutablePointer<Float>        // (N, F) act(gate)·up, input of down
    var xa: [UnsafeMutablePointer<Float>]       // 7 × (N, r), by LoRATarget ordinal
    // Gemma 3 only (empty views for Llama):
    var qRaw: UnsafeMutablePointer<Float>       // (N, QW) q before its norm
    var kRaw: UnsafeMutablePointer<Float>       // (N, KV) k before its norm
    var rstdQ: UnsafeMutablePointer<Float>      // (N·NH)
    var rstdK: UnsafeMutablePointer<Float>      // (N·NKV)
    var attnOut: UnsafeMutablePointer<Float>    // (N, C) o's output before the post-attention norm
    var rstdPA: UnsafeMutablePointer<Float>     // (N)
    var ffnOut: UnsafeMutablePointer<Float>     // (N, C) down's output before the post-feed-forward norm
    var rstdPF: UnsafeMutablePointer<Float>     // (N)
}

/// A Llama, Qwen2 or Gemma 3 model with LoRA adapters that computes the loss and the LoRA gradients of a batch.
///
/// Buffers are sized once for at most `maxBatch` sequences of at most `maxTime` tokens; a call may
/// use any `B ≤ maxBatch`, `T ≤ maxTime`.
public final class TrainingModel: @unchecked Sendable {
    public let base: BaseModel
    public let lora: LoRAParameters
    public let maxBatch: Int, maxTime: Int
    private let ropes: [RoPETable]                              // one per layer (shared by equal bases)
    private let storage: UnsafeMutableBufferPointer<Float>
    private let tokenStorage: UnsafeMutableBufferPointer<Int32>
    // Saved activations.
    private var residuals: [UnsafeMutablePointer<Float>] = []   // L+1 × (N, C)
    private var blocks: [BlockActivations] = []
    private let lnf: UnsafeMutablePointer<Float>, rstdf: UnsafeMutablePointer<Float>   // (N, C), (N)
    // The head runs only on the M ≤ N rows that have a target (prompt rows are skipped: with
    // Gemma's 262k vocabulary the head is most of a step). Its input and gradient when M < N:
    private let headIn: UnsafeMutablePointer<Float>             // (M, C) gathered lnf rows, then their gradient
    private var headRows: [Int] = []                            // (M) the rows of lnf they came from
    private let logits: UnsafeMutablePointer<Float>             // (M, V): logits, then probs, then dlogits
    private let losses: UnsafeMutablePointer<Float>             // (N)
    // Gradient scratch, reused by every block.
    private let dresid: UnsafeMutablePointer<Float>, dln: UnsafeMutablePointer<Float>     // (N, C)
    private let dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>  // (N, QW), (N, KV) ×2
    private let datty: UnsafeMutablePointer<Float>              // (N, QW)
    // Gemma 3 only: the gradient of a post-norm's input (N, C), and of q, k before their norms.
    private let dpost: UnsafeMutablePointer<Float>, dqRaw: UnsafeMutablePointer<Float>, dkRaw: UnsafeMutablePointer<Float>
    private let dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dswi: UnsafeMutablePointer<Float>
    private let dxa: UnsafeMutablePointer<Float>                // (N, r)
    // LoRA dropout: the dropped input of one projection and its gradient (N, max IN); empty without dropout.
    private let dropped: UnsafeMutablePointer<Float>, ddropped: UnsafeMutablePointer<Float>
    // A quantized base: the projection in use, dequantized (OUT·IN max); empty for a float32 base.
    private let weightScratch: UnsafeMutablePointer<Float>
    // The current batch.
    private var tokens: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>   // (N)
    private var headTargets: UnsafeMutablePointer<Int32>        // (M) targets of the head rows
    private var b = 0, t = 0, counted = 0
    /// The dropout stream of the next forward (training); `nil` runs without dropout (validation,
    /// golden checks). The same key gives the same masks, so a resumed run repeats them exactly.
    public var dropoutKey: UInt64?

    /// - Parameters: base: the frozen model; lora: its adapters; maxBatch, maxTime: the largest batch.
    public init(base: BaseModel, lora: LoRAParameters, maxBatch: Int, maxTime: Int) {
        precondition(lora.model == base.config, "LoRA parameters built for another model")
        self.base = base
        self.lora = lora
        self.maxBatch = maxBatch
        self.maxTime = maxTime
        let c = base.config, n = maxBatch * maxTime, r = lora.config.rank, qw = c.queryWidth
        let dropWidth = lora.config.dropout > 0 ? n * max(c.width, c.ffn, qw) : 0
        var tables: [Float: RoPETable] = [:]
        ropes = c.ropeBases.map { theta in
            if let table = tables[theta] { return table }
            let table = RoPETable(t: maxTime, hs: c.headSize, theta: theta)
            tables[theta] = table
            return table
        }
        let gemma = c.queryKeyNorm || c.postNorms
        // Gemma's extra saved values and scratch (zero-sized for Llama).
        let qRaw = c.queryKeyNorm ? n * qw : 0, kRaw = c.queryKeyNorm ? n * c.kvWidth : 0
        let rstdQ = c.queryKeyNorm ? n * c.heads : 0, rstdK = c.queryKeyNorm ? n * c.kvHeads : 0
        let post = c.postNorms ? n * c.width : 0, rstdPost = c.postNorms ? n : 0
        let perBlock = n * (3 * c.width + 2 * qw + 2 * c.kvWidth + 3 * c.ffn + 2 + 7 * r) + maxBatch * c.heads * maxTime * maxTime
            + qRaw + kRaw + rstdQ + rstdK + 2 * post + 2 * rstdPost
        let total = (c.layers + 1) * n * c.width + c.layers * perBlock + n * (2 * c.width + 1) + n * c.vocab + n
            + n * (2 * c.width + 2 * qw + 2 * c.kvWidth + 3 * c.ffn + r) + 2 * dropWidth + base.scratchCount
            + (gemma ? post + qRaw + kRaw : 0)
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0)
        tokenStorage = .allocate(capacity: 3 * n)
        tokenStorage.initialize(repeating: 0)
        tokens = tokenStorage.baseAddress!
        targets = tokenStorage.baseAddress! + n
        headTargets = tokenStorage.baseAddress! + 2 * n
        var cursor = storage.baseAddress!
        func take(_ count: Int) -> UnsafeMutablePointer<Float> { defer { cursor += count }; return cursor }
        for _ in 0...c.layers { residuals.append(take(n * c.width)) }
        for _ in 0..<c.layers {
            blocks.append(BlockActivations(
                ln1: take(n * c.width), rstd1: take(n), q: take(n * qw), k: take(n * c.kvWidth),
                v: take(n * c.kvWidth), att: take(maxBatch * c.heads * maxTime * maxTime), atty: take(n * qw),
                resid2: take(n * c.width), ln2: take(n * c.width), rstd2: take(n), gate: take(n * c.ffn),
                up: take(n * c.ffn), swi: take(n * c.ffn), xa: (0..<7).map { _ in take(n * r) },
                qRaw: take(qRaw), kRaw: take(kRaw), rstdQ: take(rstdQ), rstdK: take(rstdK),
                attnOut: take(post), rstdPA: take(rstdPost), ffnOut: take(post), rstdPF: take(rstdPost)))
        }
        lnf = take(n * c.width); rstdf = take(n); headIn = take(n * c.width); logits = take(n * c.vocab); losses = take(n)
        dresid = take(n * c.width); dln = take(n * c.width); dq = take(n * qw); datty = take(n * qw)
        dk = take(n * c.kvWidth); dv = take(n * c.kvWidth)
        dpost = take(gemma ? post : 0); dqRaw = take(gemma ? qRaw : 0); dkRaw = take(gemma ? kRaw : 0)
        dgate = take(n * c.ffn); dup = take(n * c.ffn); dswi = take(n * c.ffn); dxa = take(n * r)
        dropped = take(dropWidth); ddropped = take(dropWidth); weightScratch = take(base.scratchCount)
        precondition(cursor == storage.baseAddress! + total, "activation layout mismatch")
    }

    deinit {
        storage.deallocate()
        tokenStorage.deallocate()
    }

    /// Bytes held by activations and gradient scratch.
    public var activationBytes: Int { storage.count * MemoryLayout<Float>.stride }

    // MARK: Forward

    /// Runs the model on a batch and returns the summed loss over counted positions.
    ///
    /// - Parameters:
    ///   - tokens: `(B, T)` input ids, row-major.
    ///   - targets: `(B, T)` the id to predict at each position (already shifted: the next token),
    ///     or ``Ops/ignoreIndex`` where no loss is taken.
    ///   - batch: B; time: T.
    /// - Returns: the summed cross-entropy and the number of counted positions.
    @discardableResult
    public func forward(tokens inTokens: [Int32], targets inTargets: [Int32], batch: Int, time: Int) -> (sum: Double, count: Int) {
        precondition(batch <= maxBatch && time <= maxTime && inTokens.count == batch * time && inTargets.count == batch * time,
                     "forward: batch \(batch)×\(time) exceeds \(maxBatch)×\(maxTime) or ids mis-sized")
        b = batch; t = time
        let c = base.config, n = b * t, vocab = c.vocab
        for i in 0..<n {
            precondition(inTokens[i] >= 0 && Int(inTokens[i]) < vocab, "token \(inTokens[i]) out of vocabulary")
            precondition(inTargets[i] == Ops.ignoreIndex || (inTargets[i] >= 0 && Int(inTargets[i]) < vocab),
                         "target \(inTargets[i]) out of vocabulary")
            tokens[i] = inTokens[i]; targets[i] = inTargets[i]
        }
        forwardLogits(n: n, allRows: false)
        let m = headRows.count
        let result = Ops.crossEntropyForward(probs: logits, losses: losses, logits: logits, targets: headTargets, n: m, v: vocab)
        if m < n {
            // Per-position losses back in (B·T) order, 0 where ignored.
            let compact = Array(UnsafeBufferPointer(start: losses, count: m))
            losses.update(repeating: 0, count: n)
            for (k, row) in headRows.enumerated() { losses[row] = compact[k] }
        }
        counted = result.count
        return result
    }

    /// The logits `(B·T, V)` of a batch, without a loss (for checks against the runtime).
    /// - Parameters: tokens `(B, T)` input ids; batch: B; time: T.
    public func logits(tokens inTokens: [Int32], batch: Int, time: Int) -> [Float] {
        precondition(batch <= maxBatch && time <= maxTime && inTokens.count == batch * time, "logits: batch mis-sized")
        b = batch; t = time; counted = 0
        for i in 0..<(batch * time) {
            precondition(inTokens[i] >= 0 && Int(inTokens[i]) < base.config.vocab, "token \(inTokens[i]) out of vocabulary")
            tokens[i] = inTokens[i]; targets[i] = Ops.ignoreIndex
        }
        forwardLogits(n: batch * time, allRows: true)
        return Array(UnsafeBufferPointer(start: logits, count: batch * time * base.config.vocab))
    }

    /// Embedding, blocks, final norm and head: `logits` `(M, V)` for the M rows of `headRows` —
    /// every row when `allRows`, else those with a target (their targets into `headTargets`).
    private func forwardLogits(n: Int, allRows: Bool) {
        let c = base.config
        Ops.embeddingForward(out: residuals[0], tokens: tokens, wte: base.wte, n: n, c: c.width, scale: c.embeddingScale)
        for l in 0..<c.layers { blockForward(l, n: n) }
        Ops.rmsnormForward(out: lnf, rstd: rstdf, inp: residuals[c.layers], weight: base.outNorm,
                           n: n, c: c.width, eps: c.normEpsilon)
        headRows = allRows ? Array(0..<n) : (0..<n).filter { targets[$0] != Ops.ignoreIndex }
        let m = headRows.count
        guard m > 0 else { return }
        if m == n {
            headTargets.update(from: targets, count: n)
            Ops.matmulForward(out: logits, inp: lnf, weight: base.head, n: n, inF: c.width, outF: c.vocab)
        } else {
            for (k, row) in headRows.enumerated() {
                (headIn + k * c.width).update(from: lnf + row * c.width, count: c.width)
                headTargets[k] = targets[row]
            }
            Ops.matmulForward(out: logits, inp: headIn, weight: base.head, n: m, inF: c.width, outF: c.vocab)
        }
    }

    /// The per-position losses of the last forward `(B·T)` (0 where ignored).
    public func lastLosses() -> [Float] { Array(UnsafeBufferPointer(start: losses, count: b * t)) }

    /// A projection with its adapter: `out = inp · Wᵀ (+ bias) (+ out) + scale · (inp · Aᵀ) · Bᵀ`.
    private func linear(_ target: LoRATarget, layer: Int, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        n: Int, accumulate: Bool = false) {
        let (inF, outF) = target.features(base.config), frozen = base.blocks[layer]
        Ops.matmulForward(out: out, inp: inp, weight: frozen.weight(target).floats(scratch: weightScratch), bias: frozen.bias(target),
                          n: n, inF: inF, outF: outF, accumulate: accumulate)
        if let s = lora.slot(layer: layer, target: target) {
            let w = lora.views(s)
            var x = inp
            if let key = dropKey(layer: layer, target: target) {
                Ops.dropout(out: dropped, inp: inp, count: n * inF, p: lora.config.dropout, key: key)
                x = UnsafePointer(dropped)
            }
            Ops.loraForward(out: out, xa: blocks[layer].xa[ordinal(target)], inp: x, a: w.a, b: w.b,
                            scale: lora.config.scale, n: n, inF: inF, outF: outF, r: lora.config.rank)
        }
    }

    /// The dropout mask key of one projection in the current forward, or nil without dropout.
    private func dropKey(layer: Int, target: LoRATarget) -> UInt64? {
        guard lora.config.dropout > 0, let key = dropoutKey else { return nil }
        var mix = SplitMix64(seed: key ^ UInt64(layer * 8 + ordinal(target)) &* 0xD1B5_4A32_D192_ED03)
        return mix.next()
    }

    private func blockForward(_ l: Int, n: Int) {
        let c = base.config, w = base.blocks[l], a = blocks[l], x = residuals[l], hs = c.headSize
        Ops.rmsnormForward(out: a.ln1, rstd: a.rstd1, inp: x, weight: w.attnNorm, n: n, c: c.width, eps: c.normEpsilon)
        if c.queryKeyNorm, let qNorm = w.qNorm, let kNorm = w.kNorm {
            // Per-head norms: (N, NH·HS) is (N·NH, HS) rows.
            linear(.q, layer: l, out: a.qRaw, inp: a.ln1, n: n)
            linear(.k, layer: l, out: a.kRaw, inp: a.ln1, n: n)
            Ops.rmsnormForward(out: a.q, rstd: a.rstdQ, inp: a.qRaw, weight: qNorm, n: n * c.heads, c: hs, eps: c.normEpsilon)
            Ops.rmsnormForward(out: a.k, rstd: a.rstdK, inp: a.kRaw, weight: kNorm, n: n * c.kvHeads, c: hs, eps: c.normEpsilon)
        } else {
            linear(.q, layer: l, out: a.q, inp: a.ln1, n: n)
            linear(.k, layer: l, out: a.k, inp: a.ln1, n: n)
        }
        linear(.v, layer: l, out: a.v, inp: a.ln1, n: n)
        Ops.rope(a.q, table: ropes[l], b: b, t: t, h: c.heads, hs: hs, stride: c.queryWidth, style: c.ropeStyle)
        Ops.rope(a.k, table: ropes[l], b: b, t: t, h: c.kvHeads, hs: hs, stride: c.kvWidth, style: c.ropeStyle)
        Ops.attentionForward(out: a.atty, att: a.att, q: a.q, k: a.k, v: a.v, dims: dims(layer: l))
        residualAdd(.o, layer: l, out: a.resid2, residual: x, inp: a.atty, saved: a.attnOut, rstd: a.rstdPA,
                    postNorm: w.postAttnNorm, n: n)
        Ops.rmsnormForward(out: a.ln2, rstd: a.rstd2, inp: a.resid2, weight: w.ffnNorm, n: n, c: c.width, eps: c.normEpsilon)
        linear(.gate, layer: l, out: a.gate, inp: a.ln2, n: n)
        linear(.up, layer: l, out: a.up, inp: a.ln2, n: n)
        Ops.gatedForward(c.activation, out: a.swi, gate: a.gate, up: a.up, count: n * c.ffn)
        residualAdd(.down, layer: l, out: residuals[l + 1], residual: a.resid2, inp: a.swi, saved: a.ffnOut, rstd: a.rstdPF,
                    postNorm: w.postFFNNorm, n: n)
    }

    /// `out = residual + target(inp)`, or with a post-norm (Gemma 3) `out = residual +
    /// norm(target(inp))`, saving `target(inp)` `(N, C)` in `saved` and its `rstd` `(N)`.
    private func residualAdd(_ target: LoRATarget, layer l: Int, out: UnsafeMutablePointer<Float>,
                             residual: UnsafePointer<Float>, inp: UnsafePointer<Float>, saved: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, postNorm: UnsafeMutablePointer<Float>?, n: Int) {
        let c = base.config
        if let postNorm {
            linear(target, layer: l, out: saved, inp: inp, n: n)
            Ops.rmsnormForward(out: out, rstd: rstd, inp: saved, weight: postNorm, n: n, c: c.width, eps: c.normEpsilon)
            for i in 0..<(n * c.width) { out[i] += residual[i] }
        } else {
            out.update(from: residual, count: n * c.width)
            linear(target, layer: l, out: out, inp: inp, n: n, accumulate: true)
        }
    }

    private func dims(layer l: Int) -> AttentionDims {
        let c = base.config
        return AttentionDims(b: b, t: t, nh: c.heads, nkv: c.kvHeads, hs: c.headSize, window: c.slidingWindows[l],
                             scale: c.attentionScale)
    }

    private func ordinal(_ target: LoRATarget) -> Int { LoRATarget.allCases.firstIndex(of: target)! }

    // MARK: Backward

    /// Adds the gradient of `lossScale · (summed loss of the last forward)` to ``LoRAParameters/grads``.
    /// For the mean loss of one batch pass `1 / count`; with gradient accumulation, 1 / (counted
    /// positions of all micro-batches).
    public func backward(lossScale: Float) {
        let c = base.config, n = b * t, m = headRows.count
        dln.update(repeating: 0, count: n * c.width)
        if m > 0 {
            // Every head row has a target; the loss scale goes into the head product's alpha.
            Ops.crossEntropyBackwardUnscaled(probs: logits, targets: headTargets, n: m, v: c.vocab)
            if m == n {
                Ops.matmulBackward(dinp: dln, dout: logits, weight: base.head, n: n, inF: c.width, outF: c.vocab, alpha: lossScale)
            } else {
                headIn.update(repeating: 0, count: m * c.width)
                Ops.matmulBackward(dinp: headIn, dout: logits, weight: base.head, n: m, inF: c.width, outF: c.vocab, alpha: lossScale)
                for (k, row) in headRows.enumerated() { (dln + row * c.width).update(from: headIn + k * c.width, count: c.width) }
            }
        }
        dresid.update(repeating: 0, count: n * c.width)
        Ops.rmsnormBackward(dinp: dresid, dweight: nil, dout: dln, inp: residuals[c.layers], rstd: rstdf,
                            weight: base.outNorm, n: n, c: c.width)
        for l in stride(from: c.layers - 1, through: 0, by: -1) { blockBackward(l, n: n) }
    }

    /// Backward of ``linear(_:layer:out:inp:n:accumulate:)``: `dinp += dout · W` plus the adapter's
    /// part (a bias is frozen and does not enter the input's gradient).
    private func linearBackward(_ target: LoRATarget, layer: Int, dinp: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, n: Int) {
        let (inF, outF) = target.features(base.config)
        Ops.matmulBackward(dinp: dinp, dout: dout, weight: base.blocks[layer].weight(target).floats(scratch: weightScratch),
                           n: n, inF: inF, outF: outF)
        guard let s = lora.slot(layer: layer, target: target) else { return }
        let w = lora.views(s)
        let xa = blocks[layer].xa[ordinal(target)]
        if let key = dropKey(layer: layer, target: target) {
            // The branch saw dropout(inp): A's gradient uses that input, and the input gradient
            // passes back through the same mask.
            let p = lora.config.dropout
            Ops.dropout(out: dropped, inp: inp, count: n * inF, p: p, key: key)
            ddropped.update(repeating: 0, count: n * inF)
            Ops.loraBackward(dinp: ddropped, da: w.da, db: w.db, scratch: dxa, dout: dout, xa: xa, inp: dropped,
                             a: w.a, b: w.b, scale: lora.config.scale, n: n, inF: inF, outF: outF, r: lora.config.rank)
            Ops.dropout(out: ddropped, inp: ddropped, count: n * inF, p: p, key: key)
            for i in 0..<(n * inF) { dinp[i] += ddropped[i] }
        } else {
            Ops.loraBackward(dinp: dinp, da: w.da, db: w.db, scratch: dxa, dout: dout, xa: xa, inp: inp,
                             a: w.a, b: w.b, scale: lora.config.scale, n: n, inF: inF, outF: outF, r: lora.config.rank)
        }
    }

    /// On entry `dresid` holds the gradient of block `l`'s output; on exit, of its input.
    private func blockBackward(_ l: Int, n: Int) {
        let c = base.config, w = base.blocks[l], a = blocks[l], hs = c.headSize
        // Feed-forward half: next = resid2 + (postnorm)(down(swi)).
        dswi.update(repeating: 0, count: n * c.ffn)
        residualAddBackward(.down, layer: l, dinp: dswi, inp: a.swi, saved: a.ffnOut, rstd: a.rstdPF, postNorm: w.postFFNNorm, n: n)
        dgate.update(repeating: 0, count: n * c.ffn)
        dup.update(repeating: 0, count: n * c.ffn)
        Ops.gatedBackward(c.activation, dgate: dgate, dup: dup, dout: dswi, gate: a.gate, up: a.up, count: n * c.ffn)
        dln.update(repeating: 0, count: n * c.width)
        linearBackward(.gate, layer: l, dinp: dln, dout: dgate, inp: a.ln2, n: n)
        linearBackward(.up, layer: l, dinp: dln, dout: dup, inp: a.ln2, n: n)
        Ops.rmsnormBackward(dinp: dresid, dweight: nil, dout: dln, inp: a.resid2, rstd: a.rstd2, weight: w.ffnNorm,
                            n: n, c: c.width)
        // Attention half: resid2 = x + (postnorm)(o(attention(rope(q(ln1)), rope(k(ln1)), v(ln1)))).
        datty.update(repeating: 0, count: n * c.queryWidth)
        residualAddBackward(.o, layer: l, dinp: datty, inp: a.atty, saved: a.attnOut, rstd: a.rstdPA, postNorm: w.postAttnNorm, n: n)
        dq.update(repeating: 0, count: n * c.queryWidth)
        dk.update(repeating: 0, count: n * c.kvWidth)
        dv.update(repeating: 0, count: n * c.kvWidth)
        Ops.attentionBackward(dq: dq, dk: dk, dv: dv, dout: datty, att: a.att, q: a.q, k: a.k, v: a.v, dims: dims(layer: l))
        Ops.rope(dq, table: ropes[l], b: b, t: t, h: c.heads, hs: hs, stride: c.queryWidth, style: c.ropeStyle, inverse: true)
        Ops.rope(dk, table: ropes[l], b: b, t: t, h: c.kvHeads, hs: hs, stride: c.kvWidth, style: c.ropeStyle, inverse: true)
        var dqIn = UnsafePointer(dq), dkIn = UnsafePointer(dk)
        if c.queryKeyNorm, let qNorm = w.qNorm, let kNorm = w.kNorm {
            dqRaw.update(repeating: 0, count: n * c.queryWidth)
            dkRaw.update(repeating: 0, count: n * c.kvWidth)
            Ops.rmsnormBackward(dinp: dqRaw, dweight: nil, dout: dq, inp: a.qRaw, rstd: a.rstdQ, weight: qNorm, n: n * c.heads, c: hs)
            Ops.rmsnormBackward(dinp: dkRaw, dweight: nil, dout: dk, inp: a.kRaw, rstd: a.rstdK, weight: kNorm, n: n * c.kvHeads, c: hs)
            dqIn = UnsafePointer(dqRaw); dkIn = UnsafePointer(dkRaw)
        }
        dln.update(repeating: 0, count: n * c.width)
        linearBackward(.q, layer: l, dinp: dln, dout: dqIn, inp: a.ln1, n: n)
        linearBackward(.k, layer: l, dinp: dln, dout: dkIn, inp: a.ln1, n: n)
        linearBackward(.v, layer: l, dinp: dln, dout: dv, inp: a.ln1, n: n)
        Ops.rmsnormBackward(dinp: dresid, dweight: nil, dout: dln, inp: residuals[l], rstd: a.rstd1, weight: w.attnNorm,
                            n: n, c: c.width)
    }

    /// Backward of ``residualAdd``: `dresid` (the output's gradient) stays as the residual's
    /// gradient; `dinp += ` the gradient through the projection (and the post-norm).
    private func residualAddBackward(_ target: LoRATarget, layer l: Int, dinp: UnsafeMutablePointer<Float>,
                                     inp: UnsafePointer<Float>, saved: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                     postNorm: UnsafeMutablePointer<Float>?, n: Int) {
        let c = base.config
        var dout = UnsafePointer(dresid)
        if let postNorm {
            dpost.update(repeating: 0, count: n * c.width)
            Ops.rmsnormBackward(dinp: dpost, dweight: nil, dout: dresid, inp: saved, rstd: rstd, weight: postNorm, n: n, c: c.width)
            dout = UnsafePointer(dpost)
        }
        linearBackward(target, layer: l, dinp: dinp, dout: dout, inp: inp, n: n)
    }
}
