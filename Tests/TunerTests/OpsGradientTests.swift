import XCTest
@testable import Tuner

/// A finite-difference gradient test per op: each loss is `Σ out ⊙ w` for a fixed random `w`
/// (so `dout = w`), differentiated by central differences in Float and by the op's backward.
final class OpsGradientTests: XCTestCase {
    /// Max over elements of `|analytic − numeric| / max(|analytic|, |numeric|, 1% of the largest gradient)`.
    func gradientError(_ name: String, x: inout [Float], analytic: [Float], eps: Float = 1e-2,
                       loss: ([Float]) -> Double) -> Float {
        precondition(x.count == analytic.count)
        let largest = analytic.map(abs).max() ?? 0
        var worst: Float = 0
        for i in 0..<x.count {
            let saved = x[i]
            x[i] = saved + eps; let up = loss(x)
            x[i] = saved - eps; let down = loss(x)
            x[i] = saved
            let numeric = Float((up - down) / Double(2 * eps))
            let denom = max(abs(analytic[i]), abs(numeric), 0.01 * largest, 1e-6)
            worst = max(worst, abs(analytic[i] - numeric) / denom)
        }
        print("\(name): max relative error \(worst) over \(x.count) elements (largest gradient \(largest))")
        XCTAssertGreaterThan(largest, 0, "\(name): gradient is identically zero")
        return worst
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    func testEmbedding() {
        var r = TestRandom(seed: 1)
        let n = 6, c = 5, v = 4
        var wte = r.floats(v * c)
        let w = r.floats(n * c)
        let tokens: [Int32] = [0, 2, 2, 3, 1, 2]
        func run(_ wte: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n * c)
            Ops.embeddingForward(out: &out, tokens: tokens, wte: wte, n: n, c: c)
            return out
        }
        var dwte = [Float](repeating: 0, count: v * c)
        Ops.embeddingBackward(dwte: &dwte, dout: w, tokens: tokens, n: n, c: c)
        XCTAssertLessThan(gradientError("embedding dwte", x: &wte, analytic: dwte) { dot(run($0), w) }, 1e-2)
    }

    func testRMSNorm() {
        var r = TestRandom(seed: 2)
        let n = 4, c = 16
        var inp = r.floats(n * c), weight = r.floats(c)
        let w = r.floats(n * c)
        func run(_ inp: [Float], _ weight: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
            Ops.rmsnormForward(out: &out, rstd: &rstd, inp: inp, weight: weight, n: n, c: c, eps: 1e-5)
            return out
        }
        var out = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
        Ops.rmsnormForward(out: &out, rstd: &rstd, inp: inp, weight: weight, n: n, c: c, eps: 1e-5)
        var dinp = [Float](repeating: 0, count: n * c), dweight = [Float](repeating: 0, count: c)
        Ops.rmsnormBackward(dinp: &dinp, dweight: &dweight, dout: w, inp: inp, rstd: rstd, weight: weight, n: n, c: c)
        let wCopy = weight, inpCopy = inp
        XCTAssertLessThan(gradientError("rmsnorm dinp", x: &inp, analytic: dinp) { dot(run($0, wCopy), w) }, 1e-2)
        XCTAssertLessThan(gradientError("rmsnorm dweight", x: &weight, analytic: dweight) { dot(run(inpCopy, $0), w) }, 1e-2)
    }

    func testRoPE() {
        var r = TestRandom(seed: 3)
        let b = 2, t = 5, h = 3, hs = 8, stride = h * hs + 4
        let table = RoPETable(t: t, hs: hs, theta: 100)
        var x = r.floats(b * t * stride), w = r.floats(b * t * stride)
        for i in 0..<(b * t) { for j in (h * hs)..<stride { w[i * stride + j] = 0 } }   // padding columns unused
        func run(_ x: [Float]) -> [Float] {
            var y = x
            Ops.rope(&y, table: table, b: b, t: t, h: h, hs: hs, stride: stride)
            return y
        }
        var dx = w
        Ops.rope(&dx, table: table, b: b, t: t, h: h, hs: hs, stride: stride, inverse: true)
        XCTAssertLessThan(gradientError("rope dx", x: &x, analytic: dx) { dot(run($0), w) }, 1e-2)
        // Position 0 is the identity and the rotation keeps each pair's norm.
        let y = run(x)
        XCTAssertEqual(Array(y[0..<(h * hs)]), Array(x[0..<(h * hs)]))
    }

    func testAttention() {
        var r = TestRandom(seed: 4)
        let d = AttentionDims(b: 2, t: 5, nh: 4, nkv: 2, hs: 4)
        let nq = d.b * d.t * d.nh * d.hs, nk = d.b * d.t * d.nkv * d.hs
        var q = r.floats(nq), k = r.floats(nk), v = r.floats(nk)
        let w = r.floats(nq)
        func run(_ q: [Float], _ k: [Float], _ v: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: nq), att = [Float](repeating: 0, count: d.attCount)
            Ops.attentionForward(out: &out, att: &att, q: q, k: k, v: v, dims: d)
            return out
        }
        var out = [Float](repeating: 0, count: nq), att = [Float](repeating: 0, count: d.attCount)
        Ops.attentionForward(out: &out, att: &att, q: q, k: k, v: v, dims: d)
        var dq = [Float](repeating: 0, count: nq), dk = [Float](repeating: 0, count: nk), dv = dk
        Ops.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: w, att: att, q: q, k: k, v: v, dims: d)
        let q0 = q, k0 = k, v0 = v
        XCTAssertLessThan(gradientError("attention dq", x: &q, analytic: dq) { dot(run($0, k0, v0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("attention dk", x: &k, analytic: dk) { dot(run(q0, $0, v0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("attention dv", x: &v, analytic: dv) { dot(run(q0, k0, $0), w) }, 1e-2)
        // Causality: the first position's output depends only on the first key/value.
        var k2 = k0; k2[d.nkv * d.hs] += 1
        XCTAssertEqual(Array(run(q0, k2, v0)[0..<(d.nh * d.hs)]), Array(run(q0, k0, v0)[0..<(d.nh * d.hs)]))
    }

    func testSwiGLU() {
        var r = TestRandom(seed: 5)
        let count = 40
        var gate = r.floats(count, scale: 3), up = r.floats(count)
        let w = r.floats(count)
        func run(_ g: [Float], _ u: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: count)
            Ops.swigluForward(out: &out, gate: g, up: u, count: count)
            return out
        }
        var dg = [Float](repeating: 0, count: count), du = dg
        Ops.swigluBackward(dgate: &dg, dup: &du, dout: w, gate: gate, up: up, count: count)
        let g0 = gate, u0 = up
        XCTAssertLessThan(gradientError("swiglu dgate", x: &gate, analytic: dg) { dot(run($0, u0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("swiglu dup", x: &up, analytic: du) { dot(run(g0, $0), w) }, 1e-2)
    }

    func testLoRALinear() {
        var r = TestRandom(seed: 6)
        let n = 5, inF = 7, outF = 6, rank = 3, scale: Float = 2
        var x = r.floats(n * inF), a = r.floats(rank * inF), b = r.floats(outF * rank)
        let weight = r.floats(outF * inF), w = r.floats(n * outF)
        func run(_ x: [Float], _ a: [Float], _ b: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n * outF), xa = [Float](repeating: 0, count: n * rank)
            Ops.matmulForward(out: &out, inp: x, weight: weight, n: n, inF: inF, outF: outF)
            Ops.loraForward(out: &out, xa: &xa, inp: x, a: a, b: b, scale: scale, n: n, inF: inF, outF: outF, r: rank)
            return out
        }
        var out = [Float](repeating: 0, count: n * outF), xa = [Float](repeating: 0, count: n * rank)
        Ops.loraForward(out: &out, xa: &xa, inp: x, a: a, b: b, scale: scale, n: n, inF: inF, outF: outF, r: rank)
        var dx = [Float](repeating: 0, count: n * inF), da = [Float](repeating: 0, count: rank * inF)
        var db = [Float](repeating: 0, count: outF * rank), scratch = [Float](repeating: 0, count: n * rank)
        Ops.matmulBackward(dinp: &dx, dout: w, weight: weight, n: n, inF: inF, outF: outF)
        Ops.loraBackward(dinp: &dx, da: &da, db: &db, scratch: &scratch, dout: w, xa: xa, inp: x, a: a, b: b,
                         scale: scale, n: n, inF: inF, outF: outF, r: rank)
        let x0 = x, a0 = a, b0 = b
        XCTAssertLessThan(gradientError("lora linear dx", x: &x, analytic: dx) { dot(run($0, a0, b0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("lora linear dA", x: &a, analytic: da) { dot(run(x0, $0, b0), w) }, 1e-2)
        XCTAssertLessThan(gradientError("lora linear dB", x: &b, analytic: db) { dot(run(x0, a0, $0), w) }, 1e-2)
    }

    /// The tied output head is a frozen matmul with the embedding as weight, then cross-entropy.
    func testOutputHeadAndCrossEntropy() {
        var r = TestRandom(seed: 7)
        let n = 6, c = 5, v = 11
        var x = r.floats(n * c)
        let wte = r.floats(v * c, scale: 2)
        let targets: [Int32] = [3, Ops.ignoreIndex, 0, 10, Ops.ignoreIndex, 7]
        func meanLoss(_ x: [Float]) -> Double {
            var logits = [Float](repeating: 0, count: n * v), losses = [Float](repeating: 0, count: n)
            Ops.matmulForward(out: &logits, inp: x, weight: wte, n: n, inF: c, outF: v)
            let (sum, count) = Ops.crossEntropyForward(probs: &logits, losses: &losses, logits: logits, targets: targets, n: n, v: v)
            return sum / Double(count)
        }
        var logits = [Float](repeating: 0, count: n * v), losses = [Float](repeating: 0, count: n)
        Ops.matmulForward(out: &logits, inp: x, weight: wte, n: n, inF: c, outF: v)
        var probs = [Float](repeating: 0, count: n * v)
        let (_, count) = Ops.crossEntropyForward(probs: &probs, losses: &losses, logits: logits, targets: targets, n: n, v: v)
        XCTAssertEqual(count, 4)
        XCTAssertEqual(losses[1], 0)
        var dlogits = [Float](repeating: 0, count: n * v)
        Ops.crossEntropyBackward(dlogits: &dlogits, probs: probs, targets: targets, scale: 1 / Float(count), n: n, v: v)
        var dx = [Float](repeating: 0, count: n * c)
        Ops.matmulBackward(dinp: &dx, dout: dlogits, weight: wte, n: n, inF: c, outF: v)
        XCTAssertLessThan(gradientError("head+cross-entropy dx", x: &x, analytic: dx, eps: 1e-2, loss: meanLoss), 1e-2)
        // The ignored rows get no gradient.
        XCTAssertEqual(Array(dx[c..<(2 * c)]), [Float](repeating: 0, count: c))
    }
}
