import Foundation
import LLM
import Tensor

// Forward/backward pairs for every op of the Llama family, in the style of llm.c `train_gpt2.c`.
//
// Dimension letters, used in every shape comment of this module:
//   B batch, T time (sequence length), N = B·T rows, C model width, V vocabulary,
//   NH query heads, NKV key/value heads, HS head size, KV = NKV·HS, F feed-forward width, r LoRA rank.
//
// Argument order: outputs, saved values, inputs, weights, dimensions. A backward pass **adds**
// into its gradient buffers (callers zero them), so gradients from several uses accumulate.
// Every matrix product goes through `BLAS.gemm`; `parallel: true` splits large ones over the cores.

/// The Llama ops as forward/backward pairs on raw row-major float buffers.
public enum Ops {
    /// Labels equal to this are not predicted (the Hugging Face `-100` convention).
    public static let ignoreIndex: Int32 = -100

    // MARK: Embedding

    /// `out[n] = wte[tokens[n]] · scale` (Gemma 3 scales by sqrt(C), Llama by 1).
    /// - Parameters: out `(N, C)`; tokens `(N)`; wte `(V, C)`.
    public static func embeddingForward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                                        wte: UnsafePointer<Float>, n: Int, c: Int, scale: Float = 1) {
        for i in 0..<n {
            let row = out + i * c
            row.update(from: wte + Int(tokens[i]) * c, count: c)
            if scale != 1 { for j in 0..<c { row[j] *= scale } }
        }
    }

    /// `dwte[tokens[n]] += dout[n] · scale` (the tied embedding is frozen in LoRA training; kept for completeness).
    /// - Parameters: dwte `(V, C)`; dout `(N, C)`; tokens `(N)`.
    public static func embeddingBackward(dwte: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                         tokens: UnsafePointer<Int32>, n: Int, c: Int, scale: Float = 1) {
        for i in 0..<n {
            let row = dwte + Int(tokens[i]) * c, d = dout + i * c
            for j in 0..<c { row[j] += d[j] * scale }
        }
    }

    // MARK: RMSNorm

    /// `out = inp · rstd · weight` with `rstd = 1 / sqrt(mean(inp²) + eps)` per row.
    /// - Parameters: out `(N, C)`; rstd `(N)` saved; inp `(N, C)`; weight `(C)`.
    public static func rmsnormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                      inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      n: Int, c: Int, eps: Float) {
        let outS = UncheckedSendable(out), rstdS = UncheckedSendable(rstd), inpS = UncheckedSendable(inp)
        Parallel.forEach(0..<n, chunks: n >= 64 ? Parallel.coreCount : 1) { rows in
            for i in rows {
                let x = inpS.value + i * c, y = outS.value + i * c
                let s = 1 / (VectorMath.dot(x, x, count: c) / Float(c) + eps).squareRoot()
                rstdS.value[i] = s
                var j = 0
                while j + 8 <= c {
                    VectorMath.store8(VectorMath.load8(x + j) * s * VectorMath.load8(weight + j), y + j)
                    j += 8
                }
                while j < c { y[j] = x[j] * s * weight[j]; j += 1 }
            }
        }
    }

    /// With `g = dout · weight`: `dinp += rstd · (g − inp · rstd² · mean(g · inp))`;
    /// `dweight += Σ_n dout · inp · rstd` when `dweight` is given (it is frozen in LoRA training).
    /// - Parameters: dinp `(N, C)`; dweight `(C)`?; dout `(N, C)`; inp `(N, C)`; rstd `(N)`; weight `(C)`.
    public static func rmsnormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                       dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                       rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>, n: Int, c: Int) {
        let dinpS = UncheckedSendable(dinp), doutS = UncheckedSendable(dout), inpS = UncheckedSendable(inp)
        Parallel.forEach(0..<n, chunks: n >= 64 ? Parallel.coreCount : 1) { rows in
            for i in rows {
                let x = inpS.value + i * c, dy = doutS.value + i * c, dx = dinpS.value + i * c
                let s = rstd[i]
                var dot8 = SIMD8<Float>(), j = 0
                while j + 8 <= c {
                    dot8 += VectorMath.load8(dy + j) * VectorMath.load8(weight + j) * VectorMath.load8(x + j)
                    j += 8
                }
                var dot = dot8.sum()
                while j < c { dot += dy[j] * weight[j] * x[j]; j += 1 }
                let k = s * s * dot / Float(c)
                j = 0
                while j + 8 <= c {
                    let g = VectorMath.load8(dy + j) * VectorMath.load8(weight + j) - VectorMath.load8(x + j) * k
                    VectorMath.store8(VectorMath.load8(dx + j) + s * g, dx + j)
                    j += 8
                }
                while j < c { dx[j] += s * (dy[j] * weight[j] - x[j] * k); j += 1 }
            }
        }
        if let dweight {
            for i in 0..<n {
                let x = inp + i * c, dy = dout + i * c
                for j in 0..<c { dweight[j] += dy[j] * x[j] * rstd[i] }
            }
        }
    }

    // MARK: RoPE

    /// Rotates the pairs of every head by `pos · θ^(−2i/HS)`, in place: adjacent pairs
    /// `(x[2i], x[2i+1])` for Llama (GGUF's permuted q/k rows; Hugging Face's rotate-half on its
    /// un-permuted rows is the same map), or halves `(x[i], x[i + HS/2])` (NeoX) for Gemma 3.
    /// The backward is the inverse rotation: call with `inverse: true` on the gradient.
    /// - Parameters: x `(B, T, H, HS)` with row stride `stride ≥ H·HS`; table from ``RoPETable``.
    public static func rope(_ x: UnsafeMutablePointer<Float>, table: RoPETable, b: Int, t: Int, h: Int,
                            hs: Int, stride: Int, style: TrainModelConfig.RoPEStyle = .adjacentPairs,
                            inverse: Bool = false) {
        precondition(table.t >= t && table.hs == hs, "rope: table (\(table.t), \(table.hs)) too small for T=\(t) HS=\(hs)")
        let half = hs / 2, sign: Float = inverse ? -1 : 1
        // Channel offsets of pair i's two members: (2i, 2i+1) or (i, i + HS/2).
        let (step, second) = style == .adjacentPairs ? (2, 1) : (1, half)
        let xs = UncheckedSendable(x)
        table.cos.withUnsafeBufferPointer { cosB in
            table.sin.withUnsafeBufferPointer { sinB in
                let cosP = UncheckedSendable(cosB.baseAddress!), sinP = UncheckedSendable(sinB.baseAddress!)
                Parallel.forEach(0..<(b * t), chunks: b * t >= 64 ? Parallel.coreCount : 1) { rows in
                    for bt in rows {
                        let pos = bt % t
                        let cs = cosP.value + pos * half, sn = sinP.value + pos * half
                        for head in 0..<h {
                            let v = xs.value + bt * stride + head * hs
                            for i in 0..<half {
                                let a = step * i, x0 = v[a], x1 = v[a + second], c = cs[i], s = sign * sn[i]
                                v[a] = x0 * c - x1 * s
                                v[a + second] = x0 * s + x1 * c
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Linear (frozen weight) and LoRA

    /// `out = inp · weightᵀ (+ bias)` (+ `out` when `accumulate`).
    /// - Parameters: out `(N, OUT)`; inp `(N, IN)`; weight `(OUT, IN)`; bias `(OUT)`, added to every row (Qwen2's q/k/v).
    public static func matmulForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil,
                                     n: Int, inF: Int, outF: Int, accumulate: Bool = false) {
        BLAS.gemm(a: inp, b: weight, transB: true, c: out, m: n, n: outF, k: inF,
                  beta: accumulate ? 1 : 0, parallel: true)
        guard let bias else { return }
        for i in 0..<n {
            let row = out + i * outF
            for j in 0..<outF { row[j] += bias[j] }
        }
    }

    /// `dinp += alpha · dout · weight` (the weight is frozen: no weight gradient; a bias is frozen
    /// too and does not change the input's gradient).
    /// - Parameters: dinp `(N, IN)`; dout `(N, OUT)`; weight `(OUT, IN)`; alpha: a scale folded into the product.
    public static func matmulBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                      weight: UnsafePointer<Float>, n: Int, inF: Int, outF: Int, alpha: Float = 1) {
        BLAS.gemm(a: dout, b: weight, c: dinp, m: n, n: inF, k: outF, alpha: alpha, beta: 1, parallel: true)
    }

    /// The LoRA branch: `xa = inp · Aᵀ` (saved), `out += scale · xa · Bᵀ`.
    /// - Parameters: out `(N, OUT)`; xa `(N, r)`; inp `(N, IN)`; a `(r, IN)`; b `(OUT, r)`.
    public static func loraForward(out: UnsafeMutablePointer<Float>, xa: UnsafeMutablePointer<Float>,
                                   inp: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                   scale: Float, n: Int, inF: Int, outF: Int, r: Int) {
        BLAS.gemm(a: inp, b: a, transB: true, c: xa, m: n, n: r, k: inF, parallel: true)
        BLAS.gemm(a: xa, b: b, transB: true, c: out, m: n, n: outF, k: r, alpha: scale, beta: 1, parallel: true)
    }

    /// Backward of ``loraForward``: with `g = dout · B` (scratch `(N, r)`):
    /// `dinp += scale · g · A`, `dB += scale · doutᵀ · xa`, `dA += scale · gᵀ · inp`.
    /// - Parameters: dinp `(N, IN)`; da `(r, IN)`; db `(OUT, r)`; scratch `(N, r)`; dout `(N, OUT)`;
    ///   xa `(N, r)`; inp `(N, IN)`; a `(r, IN)`; b `(OUT, r)`.
    public static func loraBackward(dinp: UnsafeMutablePointer<Float>, da: UnsafeMutablePointer<Float>,
                                    db: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                    dout: UnsafePointer<Float>, xa: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                    a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                    scale: Float, n: Int, inF: Int, outF: Int, r: Int) {
        BLAS.gemm(a: dout, b: b, c: scratch, m: n, n: r, k: outF, parallel: true)
        BLAS.gemm(a: scratch, b: a, c: dinp, m: n, n: inF, k: r, alpha: scale, beta: 1, parallel: true)
        BLAS.gemm(a: dout, transA: true, b: xa, c: db, m: outF, n: r, k: n, alpha: scale, beta: 1, parallel: true)
        BLAS.gemm(a: scratch, transA: true, b: inp, c: da, m: r, n: inF, k: n, alpha: scale, beta: 1, parallel: true)
    }

    // MARK: Dropout

    /// Inverted dropout with a counter-based mask: element `i` is kept when the top 24 bits of
    /// SplitMix64(`key` + i·φ) are ≥ p·2²⁴, and kept elements are scaled by 1 / (1 − p). The same
    /// key gives the same mask, so the backward pass regenerates it instead of storing it, and the
    /// backward of this op is the op itself applied to the gradient. `out` may equal `inp`.
    /// - Parameters: out, inp `(count)`; p in [0, 1); key: one per (step, micro-batch, layer, target).
    public static func dropout(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, p: Float, key: UInt64) {
        let threshold = UInt64(Double(p) * 16_777_216), keep = 1 / (1 - p)
        let o = UncheckedSendable(out), x = UncheckedSendable(inp)
        Parallel.forEach(0..<count, chunks: count >= 1 << 15 ? Parallel.coreCount : 1) { range in
            for i in range {
                var z = key &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                o.value[i] = (z >> 40) >= threshold ? x.value[i] * keep : 0
            }
        }
    }

    // MARK: Gated feed-forward (SwiGLU, GeGLU)

    /// `out = act(gate) · up`, act the model's gate activation (silu for Llama/Qwen2, GELU-tanh for Gemma 3).
    /// - Parameters: out `(N, F)`; gate `(N, F)`; up `(N, F)`; count = N·F.
    public static func gatedForward(_ activation: TrainModelConfig.Activation, out: UnsafeMutablePointer<Float>,
                                    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        switch activation {
        case .silu: gatedForward(SiLU.self, out: out, gate: gate, up: up, count: count)
        case .geluTanh: gatedForward(GELUTanh.self, out: out, gate: gate, up: up, count: count)
        }
    }

    /// `dgate += dout · up · act'(g)`, `dup += dout · act(g)`.
    /// - Parameters: dgate, dup, dout, gate, up all `(N, F)`; count = N·F.
    public static func gatedBackward(_ activation: TrainModelConfig.Activation, dgate: UnsafeMutablePointer<Float>,
                                     dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                     gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        switch activation {
        case .silu: gatedBackward(SiLU.self, dgate: dgate, dup: dup, dout: dout, gate: gate, up: up, count: count)
        case .geluTanh: gatedBackward(GELUTanh.self, dgate: dgate, dup: dup, dout: dout, gate: gate, up: up, count: count)
        }
    }

    /// ``gatedForward(_:out:gate:up:count:)`` with silu (SwiGLU).
    public static func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        gatedForward(.silu, out: out, gate: gate, up: up, count: count)
    }

    /// ``gatedBackward(_:dgate:dup:dout:gate:up:count:)`` with silu (SwiGLU).
    public static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                      gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        gatedBackward(.silu, dgate: dgate, dup: dup, dout: dout, gate: gate, up: up, count: count)
    }

    /// ``gatedForward(_:out:gate:up:count:)`` with GELU-tanh (GeGLU).
    public static func geluGateForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        gatedForward(.geluTanh, out: out, gate: gate, up: up, count: count)
    }

    /// ``gatedBackward(_:dgate:dup:dout:gate:up:count:)`` with GELU-tanh (GeGLU).
    public static func geluGateBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        gatedBackward(.geluTanh, dgate: dgate, dup: dup, dout: dout, gate: gate, up: up, count: count)
    }

    /// The elementwise loops of both activations (specialised per activation: no call per element).
    static func gatedForward<A: GateActivation>(_: A.Type, out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                                                up: UnsafePointer<Float>, count: Int) {
        let o = UncheckedSendable(out), g = UncheckedSendable(gate), u = UncheckedSendable(up)
        Parallel.forEach(0..<count, chunks: count >= 1 << 14 ? Parallel.coreCount : 1) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                VectorMath.store8(A.value(VectorMath.load8(g.value + i)) * VectorMath.load8(u.value + i), o.value + i)
                i += 8
            }
            for j in i..<range.upperBound { o.value[j] = A.value(g.value[j]) * u.value[j] }
        }
    }

    static func gatedBackward<A: GateActivation>(_: A.Type, dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                                 dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                                 up: UnsafePointer<Float>, count: Int) {
        let dg = UncheckedSendable(dgate), du = UncheckedSendable(dup), d = UncheckedSendable(dout)
        let g = UncheckedSendable(gate), u = UncheckedSendable(up)
        Parallel.forEach(0..<count, chunks: count >= 1 << 14 ? Parallel.coreCount : 1) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let (act, slope) = A.valueAndSlope(VectorMath.load8(g.value + i))
                let dy = VectorMath.load8(d.value + i)
                VectorMath.store8(VectorMath.load8(dg.value + i) + dy * VectorMath.load8(u.value + i) * slope, dg.value + i)
                VectorMath.store8(VectorMath.load8(du.value + i) + dy * act, du.value + i)
                i += 8
            }
            for j in i..<range.upperBound {
                let (act, slope) = A.valueAndSlope(g.value[j]), dy = d.value[j]
                dg.value[j] += dy * u.value[j] * slope
                du.value[j] += dy * act
            }
        }
    }

    // MARK: Cross-entropy

    /// Softmax of each row of `logits` into `probs` (may alias `logits`) and the loss
    /// `−log p[target]` of every row whose target is not ``ignoreIndex``.
    /// - Parameters: probs `(N, V)`; losses `(N)` (0 for ignored rows); logits `(N, V)`; targets `(N)`.
    /// - Returns: the summed loss and the number of counted rows.
    @discardableResult
    public static func crossEntropyForward(probs: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>,
                                           logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                           n: Int, v: Int) -> (sum: Double, count: Int) {
        let p = UncheckedSendable(probs), l = UncheckedSendable(logits), ls = UncheckedSendable(losses)
        let tg = UncheckedSendable(targets)
        Parallel.forEach(0..<n, chunks: n >= 8 ? Parallel.coreCount : 1) { rows in
            for i in rows {
                let x = l.value + i * v, y = p.value + i * v
                let target = Int(tg.value[i])
                // Read before `probs` (which may alias `logits`) is written; log p[target] from the
                // logit (not the rounded probability) keeps small losses exact.
                let logit = target == Int(ignoreIndex) ? 0 : x[target]
                let m = VectorMath.maximum(x, count: v)
                let sum = expSum(y, x, count: v, minus: m)
                ls.value[i] = target == Int(ignoreIndex) ? 0 : Float(log(sum) + Double(m - logit))
                VectorMath.scale(y, count: v, by: Float(1 / sum))
            }
        }
        var total: Double = 0, count = 0
        for i in 0..<n where targets[i] != ignoreIndex { total += Double(losses[i]); count += 1 }
        return (total, count)
    }

    /// `dlogits = scale · (probs − onehot(target))` for counted rows and 0 for ignored ones;
    /// `dlogits` may alias `probs` (it is **written**, not accumulated: the logits feed nothing else).
    /// For the mean loss, `scale` is 1 / counted rows.
    /// - Parameters: dlogits `(N, V)`; probs `(N, V)`; targets `(N)`.
    public static func crossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                            targets: UnsafePointer<Int32>, scale: Float, n: Int, v: Int) {
        let d = UncheckedSendable(dlogits), p = UncheckedSendable(probs), tg = UncheckedSendable(targets)
        Parallel.forEach(0..<n, chunks: n >= 8 ? Parallel.coreCount : 1) { rows in
            for i in rows {
                let y = p.value + i * v, dy = d.value + i * v, target = tg.value[i]
                if target == ignoreIndex {
                    dy.update(repeating: 0, count: v)
                    continue
                }
                for j in 0..<v { dy[j] = scale * y[j] }
                dy[Int(target)] -= scale
            }
        }
    }

    /// `probs −= onehot(target)` in place, for rows that all have a target: the gradient of the
    /// summed loss, with the loss scale left to the next product's `alpha` (one pass fewer over
    /// the `(N, V)` buffer than ``crossEntropyBackward(dlogits:probs:targets:scale:n:v:)``).
    /// - Parameters: probs `(N, V)`; targets `(N)`, none equal to ``ignoreIndex``.
    public static func crossEntropyBackwardUnscaled(probs: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                                    n: Int, v: Int) {
        for i in 0..<n {
            precondition(targets[i] != ignoreIndex, "crossEntropyBackwardUnscaled: row \(i) has no target")
            probs[i * v + Int(targets[i])] -= 1
        }
    }

    /// Writes `e^(x − shift)` into `out` (may alias `x`) and returns the sum, accumulated in blocks
    /// of 256 floats then in `Double`.
    static func expSum(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, minus shift: Float) -> Double {
        var total: Double = 0, i = 0
        while i < count {
            let end = min(count, i + 256)
            var acc = SIMD8<Float>()
            while i + 8 <= end {
                let e = VectorMath.exp(VectorMath.load8(x + i) - shift)
                VectorMath.store8(e, out + i)
                acc += e
                i += 8
            }
            var tail: Float = 0
            while i < end { let e = Foundation.exp(x[i] - shift); out[i] = e; tail += e; i += 1 }
            total += Double(acc.sum() + tail)
        }
        return total
    }
}

// MARK: - RoPE table

/// Cosines and sines of the rotary angles `pos · θ^(−2i/HS)` for `pos < T`, `i < HS/2`, computed
/// as Hugging Face does (the inverse frequency and the angle rounded to float32).
public struct RoPETable: Sendable {
    /// Positions covered.
    public let t: Int
    /// Head size.
    public let hs: Int
    /// `(T, HS/2)` each.
    public let cos: [Float], sin: [Float]

    /// - Parameters: t: positions; hs: head size (even); theta: the base frequency (`rope.freq_base`).
    public init(t: Int, hs: Int, theta: Float) {
        self.t = t
        self.hs = hs
        let half = hs / 2
        var c = [Float](repeating: 0, count: t * half), s = c
        for i in 0..<half {
            let inv = Float(1 / Foundation.pow(Double(theta), Double(2 * i) / Double(hs)))
            for pos in 0..<t {
                let angle = Double(Float(pos) * inv)
                c[pos * half + i] = Float(Foundation.cos(angle))
                s[pos * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }
}

// MARK: - Gate activations

/// A gate activation and its derivative, for eight floats (the vector loop) and for one (the tail).
protocol GateActivation {
    static func value(_ x: SIMD8<Float>) -> SIMD8<Float>
    /// `(act(x), act'(x))`.
    static func valueAndSlope(_ x: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>)
    static func value(_ x: Float) -> Float
    static func valueAndSlope(_ x: Float) -> (Float, Float)
}

/// `silu(g) = g · σ(g)`, `silu'(g) = σ(g)(1 + g(1 − σ(g)))`.
enum SiLU: GateActivation {
    @inline(__always) static func value(_ x: SIMD8<Float>) -> SIMD8<Float> { x / (1 + VectorMath.exp(-x)) }
    @inline(__always) static func valueAndSlope(_ x: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        let s = 1 / (1 + VectorMath.exp(-x))
        return (x * s, s * (1 + x * (1 - s)))
    }
    @inline(__always) static func value(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }
    @inline(__always) static func valueAndSlope(_ x: Float) -> (Float, Float) {
        let s = 1 / (1 + Foundation.exp(-x))
        return (x * s, s * (1 + x * (1 - s)))
    }
}

/// `gelu(g) = ½ g (1 + tanh z)`, `z = √(2/π)(g + 0.044715 g³)` (the runtime's `Ops.gatedActivation`);
/// `gelu'(g) = ½ (1 + tanh z) + ½ g (1 − tanh² z) √(2/π) (1 + 3·0.044715 g²)`.
enum GELUTanh: GateActivation {
    /// √(2/π), and the cubic coefficient of the tanh approximation.
    static let k: Float = 0.797_884_56, c: Float = 0.044_715

    /// `tanh z` for eight floats, as `1 − 2 / (e^{2z} + 1)`.
    @inline(__always) static func tanhZ(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let z: SIMD8<Float> = k * (x + c * x * x * x)
        return 1 - 2 / (VectorMath.exp(2 * z) + 1)
    }
    @inline(__always) static func value(_ x: SIMD8<Float>) -> SIMD8<Float> { 0.5 * x * (1 + tanhZ(x)) }
    @inline(__always) static func valueAndSlope(_ x: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        let th = tanhZ(x)
        let half: SIMD8<Float> = 0.5 * (1 + th)
        let dz: SIMD8<Float> = k * (1 + 3 * c * x * x)
        let slope: SIMD8<Float> = half + 0.5 * x * (1 - th * th) * dz
        return (x * half, slope)
    }
    @inline(__always) static func value(_ x: Float) -> Float { 0.5 * x * (1 + Foundation.tanh(k * (x + c * x * x * x))) }
    @inline(__always) static func valueAndSlope(_ x: Float) -> (Float, Float) {
        let th = Foundation.tanh(k * (x + c * x * x * x))
        return (0.5 * x * (1 + th), 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * c * x * x))
    }
}
