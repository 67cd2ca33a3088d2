import XCTest
@testable import LLM
@testable import Tuner

/// Finite-difference tests of the ops Gemma 3 adds (GeGLU, rotate-half RoPE, per-head q/k RMSNorm,
/// the sliding-window mask, the scaled embedding), and each forward against the runtime's kernel
/// (`LLM.Ops`, which the golden logits check) where one exists. Same method as `OpsGradientTests`:
/// the loss is `Σ out ⊙ w` for a fixed random `w`, differentiated by central differences.
final class GemmaOpsGradientTests: XCTestCase {
    /// Max over elements of `|analytic − numeric| / max(|analytic|, |numeric|, 1% of the largest
    /// gradient)`, printed (the measure of `OpsGradientTests`).
    private func gradientError(_ name: String, x: inout [Float], analytic: [Float], eps: Float = 1e-2,
                               loss: ([Float]) -> Double) -> Float {
        let largest = analytic.map(abs).max() ?? 0
        var worst: Float = 0
        for i in 0..<x.count {
            let saved = x[i]
            x[i] = saved + eps; let up = loss(x)
            x[i] = saved - eps; let down = loss(x)
            x[i] = saved
            let numeric = Float((up - down) / Double(2 * eps))
            worst = max(worst, abs(analytic[i] - numeric) / max(abs(analytic[i]), abs(numeric), 0.01 * largest, 1e-6))
        }
        print("\(name): max relative error \(worst) over \(x.count) elements (largest gradient \(largest))")
        XCTAssertGreaterThan(largest, 0, "\(name): gradient is identically zero")
        return worst
    }

    private func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    private func zeros(_ n: Int) -> [Float] { [Float](repeating: 0, count: n) }

    func testGeluTanhGate() {
        var r = TestRandom(seed: 11)
        let count = 45
        var gate = r.floats(count, scale: 4), up = r.floats(count)
        let w = r.floats(count)
        func run(_ g: [Float], _ u: [Float]) -> [Float] {
            var out = zeros(count)
            Tuner.Ops.geluGateForward(out: &out, gate: g, up: u, count: count)
            return out
        }
        var dg = zeros(count), du = zeros(count)
        Tuner.Ops.geluGateBackward(dgate: &dg, dup: &du, dout: w, gate: gate, up: up, count: count)
        let g0 = gate, u0 = up
        XCTAssertLessThan(gradientError("gelu-tanh gate dgate", x: &gate, analytic: dg) { dot(run($0, u0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("gelu-tanh gate dup", x: &up, analytic: du) { dot(run(g0, $0), w) }, 1e-2)
        // The runtime's fused kernel (SIMD tanh through exp) computes the same values.
        var runtime = g0
        LLM.Ops.gatedActivation(&runtime, u0, count: count, activation: .geluTanh)
        let diff = zip(run(g0, u0), runtime).map { abs($0 - $1) }.max()!
        print("gelu-tanh gate: max difference to the runtime kernel \(diff)")
        XCTAssertLessThan(diff, 1e-5)
    }

    func testRoPEHalves() {
        var r = TestRandom(seed: 12)
        let b = 2, t = 5, h = 3, hs = 8, stride = h * hs + 4
        let table = RoPETable(t: t, hs: hs, theta: 10_000)
        var x = r.floats(b * t * stride), w = r.floats(b * t * stride)
        for i in 0..<(b * t) { for j in (h * hs)..<stride { w[i * stride + j] = 0 } }
        func run(_ x: [Float]) -> [Float] {
            var y = x
            Tuner.Ops.rope(&y, table: table, b: b, t: t, h: h, hs: hs, stride: stride, style: .halves)
            return y
        }
        var dx = w
        Tuner.Ops.rope(&dx, table: table, b: b, t: t, h: h, hs: hs, stride: stride, style: .halves, inverse: true)
        XCTAssertLessThan(gradientError("rope halves dx", x: &x, analytic: dx) { dot(run($0), w) }, 1e-2)
        // The runtime's rotate-half RoPE on the same rows (positions 0..<T per sequence) agrees exactly.
        let y = run(x), runtimeTable = LLM.Ops.ropeTable(positions: Array(0..<t), headSize: hs, base: 10_000)
        XCTAssertEqual(runtimeTable.cos, table.cos)
        var runtime = x
        runtime.withUnsafeMutableBufferPointer { p in
            for seq in 0..<b {
                LLM.Ops.rope(p.baseAddress! + seq * t * stride, rows: t, stride: stride, heads: h, headSize: hs,
                             cos: runtimeTable.cos, sin: runtimeTable.sin, style: .halves)
            }
        }
        let diff = zip(y, runtime).map { abs($0 - $1) }.max()!
        print("rope halves: max difference to the runtime kernel \(diff)")
        XCTAssertEqual(diff, 0)
        // Halves and adjacent pairs differ (the style is not ignored).
        var adjacent = x
        Tuner.Ops.rope(&adjacent, table: table, b: b, t: t, h: h, hs: hs, stride: stride)
        XCTAssertNotEqual(adjacent, y)
    }

    func testPerHeadRMSNorm() {
        // q (N, NH·HS) normalised per head = rmsnorm on (N·NH, HS) rows with an (HS) weight.
        var r = TestRandom(seed: 13)
        let n = 3, nh = 2, hs = 8, eps: Float = 1e-6
        var q = r.floats(n * nh * hs, scale: 2)
        let weight = r.floats(hs), w = r.floats(n * nh * hs)
        func run(_ q: [Float]) -> [Float] {
            var out = zeros(q.count), rstd = zeros(n * nh)
            Tuner.Ops.rmsnormForward(out: &out, rstd: &rstd, inp: q, weight: weight, n: n * nh, c: hs, eps: eps)
            return out
        }
        var out = zeros(q.count), rstd = zeros(n * nh), dq = zeros(q.count)
        Tuner.Ops.rmsnormForward(out: &out, rstd: &rstd, inp: q, weight: weight, n: n * nh, c: hs, eps: eps)
        Tuner.Ops.rmsnormBackward(dinp: &dq, dweight: nil, dout: w, inp: q, rstd: rstd, weight: weight, n: n * nh, c: hs)
        let q0 = q
        XCTAssertLessThan(gradientError("per-head q norm dq", x: &q, analytic: dq) { dot(run($0), w) }, 1e-2)
        var runtime = zeros(q0.count)
        LLM.Ops.rmsNorm(&runtime, q0, weight: weight, rows: n * nh, channels: hs, epsilon: eps)
        let diff = zip(run(q0), runtime).map { abs($0 - $1) }.max()!
        print("per-head rmsnorm: max difference to the runtime kernel \(diff)")
        XCTAssertLessThan(diff, 1e-5)
    }

    func testSlidingWindowAttention() {
        var r = TestRandom(seed: 14)
        let d = AttentionDims(b: 2, t: 7, nh: 4, nkv: 1, hs: 4, window: 3, scale: 0.4)
        let nq = d.b * d.t * d.nh * d.hs, nk = d.b * d.t * d.nkv * d.hs
        var q = r.floats(nq), k = r.floats(nk), v = r.floats(nk)
        let w = r.floats(nq)
        func run(_ q: [Float], _ k: [Float], _ v: [Float], dims: AttentionDims = d) -> [Float] {
            var out = zeros(nq), att = zeros(dims.attCount)
            Tuner.Ops.attentionForward(out: &out, att: &att, q: q, k: k, v: v, dims: dims)
            return out
        }
        var att = zeros(d.attCount), out = zeros(nq)
        Tuner.Ops.attentionForward(out: &out, att: &att, q: q, k: k, v: v, dims: d)
        var dq = zeros(nq), dk = zeros(nk), dv = zeros(nk)
        Tuner.Ops.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: w, att: att, q: q, k: k, v: v, dims: d)
        let q0 = q, k0 = k, v0 = v
        XCTAssertLessThan(gradientError("window attention dq", x: &q, analytic: dq) { dot(run($0, k0, v0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("window attention dk", x: &k, analytic: dk) { dot(run(q0, $0, v0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("window attention dv", x: &v, analytic: dv) { dot(run(q0, k0, $0), w) }, 1e-2)
        // Position 6 sees 4, 5, 6 only: changing key 3 leaves it, and changes position 5 (sees 3, 4, 5).
        let row = d.nh * d.hs, base = run(q0, k0, v0)
        var k3 = k0; for j in 0..<d.hs { k3[3 * d.hs + j] += 1 }
        let moved = run(q0, k3, v0)
        XCTAssertEqual(Array(moved[(6 * row)..<(7 * row)]), Array(base[(6 * row)..<(7 * row)]), "key 3 is outside position 6's window")
        XCTAssertNotEqual(Array(moved[(5 * row)..<(6 * row)]), Array(base[(5 * row)..<(6 * row)]), "key 3 is inside position 5's window")
        // Probabilities are zero outside the window; a window of at least T is plain causal attention.
        for i in 0..<d.t { for j in 0..<d.t where j > i || j <= i - 3 { XCTAssertEqual(att[i * d.t + j], 0) } }
        let wide = AttentionDims(b: 2, t: 7, nh: 4, nkv: 1, hs: 4, window: 7, scale: 0.4)
        let causal = AttentionDims(b: 2, t: 7, nh: 4, nkv: 1, hs: 4, scale: 0.4)
        XCTAssertEqual(run(q0, k0, v0, dims: wide), run(q0, k0, v0, dims: causal))
    }

    func testScaledEmbedding() {
        var r = TestRandom(seed: 15)
        let n = 5, c = 6, v = 4, scale = Float(640).squareRoot()
        var wte = r.floats(v * c)
        let w = r.floats(n * c), tokens: [Int32] = [2, 0, 2, 3, 1]
        func run(_ wte: [Float]) -> [Float] {
            var out = zeros(n * c)
            Tuner.Ops.embeddingForward(out: &out, tokens: tokens, wte: wte, n: n, c: c, scale: scale)
            return out
        }
        var dwte = zeros(v * c)
        Tuner.Ops.embeddingBackward(dwte: &dwte, dout: w, tokens: tokens, n: n, c: c, scale: scale)
        let y = run(wte)
        XCTAssertEqual(y[c + 1], wte[1] * scale)
        XCTAssertLessThan(gradientError("scaled embedding dwte", x: &wte, analytic: dwte, eps: 1e-3) { dot(run($0), w) }, 1e-2)
    }
}
