import Foundation
import XCTest
@testable import Tuner

/// The blocked causal attention (products only over `AttentionDims.blocks`) against a plain
/// double-precision reference, at lengths that span several blocks, with and without a window
/// narrower than a block (so blocks start right of key 0).
final class BlockedAttentionTests: XCTestCase {
    /// Forward output and the gradients of `Σ out · w` for q, k, v, computed naively in Double.
    func reference(_ q: [Float], _ k: [Float], _ v: [Float], _ w: [Float], _ d: AttentionDims)
        -> (out: [Double], dq: [Double], dk: [Double], dv: [Double]) {
        let t = d.t, hs = d.hs, qs = d.nh * hs, kvs = d.nkv * hs
        var out = [Double](repeating: 0, count: q.count), dq = out
        var dk = [Double](repeating: 0, count: k.count), dv = dk
        for b in 0..<d.b {
            for h in 0..<d.nh {
                let g = h / d.group
                func qi(_ i: Int, _ c: Int) -> Double { Double(q[b * t * qs + i * qs + h * hs + c]) }
                func kj(_ j: Int, _ c: Int) -> Double { Double(k[b * t * kvs + j * kvs + g * hs + c]) }
                func vj(_ j: Int, _ c: Int) -> Double { Double(v[b * t * kvs + j * kvs + g * hs + c]) }
                for i in 0..<t {
                    let keys = Array(d.first(i)...i)
                    let s = keys.map { j in (0..<hs).reduce(0.0) { $0 + qi(i, $1) * kj(j, $1) } * Double(d.scale) }
                    let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                    let p = e.map { $0 / z }
                    let wo = (0..<hs).map { Double(w[b * t * qs + i * qs + h * hs + $0]) }
                    for c in 0..<hs { out[b * t * qs + i * qs + h * hs + c] = zip(p, keys).reduce(0.0) { $0 + $1.0 * vj($1.1, c) } }
                    // dP_j = w·v_j; dS_j = P_j (dP_j − Σ P dP).
                    let dp = keys.map { j in (0..<hs).reduce(0.0) { $0 + wo[$1] * vj(j, $1) } }
                    let mean = zip(p, dp).reduce(0.0) { $0 + $1.0 * $1.1 }
                    for (n, j) in keys.enumerated() {
                        let ds = p[n] * (dp[n] - mean) * Double(d.scale)
                        for c in 0..<hs {
                            dv[b * t * kvs + j * kvs + g * hs + c] += p[n] * wo[c]
                            dq[b * t * qs + i * qs + h * hs + c] += ds * kj(j, c)
                            dk[b * t * kvs + j * kvs + g * hs + c] += ds * qi(i, c)
                        }
                    }
                }
            }
        }
        return (out, dq, dk, dv)
    }

    func maxDiff(_ a: [Float], _ b: [Double]) -> Double { zip(a, b).map { abs(Double($0) - $1) }.max()! }

    func testBlockedMatchesTheReferenceOverSeveralBlocks() {
        for window in [nil, 40] as [Int?] {
            var r = TestRandom(seed: 11)
            let d = AttentionDims(b: 2, t: 150, nh: 4, nkv: 2, hs: 8, window: window)
            XCTAssertEqual(d.blocks().count, 3)
            let nq = d.b * d.t * d.nh * d.hs, nk = d.b * d.t * d.nkv * d.hs
            let q = r.floats(nq), k = r.floats(nk), v = r.floats(nk), w = r.floats(nq)
            var out = [Float](repeating: 0, count: nq), att = [Float](repeating: 7, count: d.attCount)
            Ops.attentionForward(out: &out, att: &att, q: q, k: k, v: v, dims: d)
            var dq = [Float](repeating: 0, count: nq), dk = [Float](repeating: 0, count: nk), dv = dk
            Ops.attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: w, att: att, q: q, k: k, v: v, dims: d)
            let ref = reference(q, k, v, w, d)
            let diffs = [maxDiff(out, ref.out), maxDiff(dq, ref.dq), maxDiff(dk, ref.dk), maxDiff(dv, ref.dv)]
            print("blocked attention window \(window.map(String.init) ?? "none"), T=150: max |diff| out/dq/dk/dv \(diffs)")
            for diff in diffs { XCTAssertLessThan(diff, 1e-5) }
            // Masked probabilities are exactly zero (the buffer started at 7).
            let i = 100, row = Array(att[(i * d.t)..<((i + 1) * d.t)])
            XCTAssertEqual(row[(i + 1)...].max(), 0)
            if window != nil { XCTAssertEqual(row[..<d.first(i)].max(), 0) }
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5)
        }
    }
}
