import Foundation
import XCTest
@testable import LLM

/// The integer decode/batch kernels (`QuantIntDot` through `QuantMatVec.multiply`) against a
/// float64 dot product of the dequantized weights, on SmolLM2's real Q4_1 and Q8_0 weights,
/// real activations (token embeddings and the layer-0 feed-forward activations they give), and
/// Q4_0 blocks re-quantized from the real weights. Tolerances are relative to the largest
/// reference output; the max differences are printed.
final class KernelTests: XCTestCase {
    /// Rows of `w` dequantized `(R, K)`.
    private func dense(_ w: LinearWeight) -> [Float] {
        var out = [Float](repeating: 0, count: w.rows * w.columns)
        out.withUnsafeMutableBufferPointer { w.dequantizeRows(0..<w.rows, into: $0.baseAddress!) }
        return out
    }

    /// Real activations `(T, C)`: the embeddings of a tokenized sentence.
    private func embeddings(_ model: LlamaModel, count t: Int) throws -> [Float] {
        let tokenizer = try SharedModel.bpe()
        let ids = Array(tokenizer.encode(String(repeating: "Metformin lowers hepatic glucose production. ", count: 8)).prefix(t))
        XCTAssertEqual(ids.count, t)
        let e = dense(model.weights.tokenEmbedding), c = model.config.embeddingLength
        return ids.flatMap { e[($0 * c)..<(($0 + 1) * c)] }
    }

    private func compare(_ weight: LinearWeight, reference: [Float], x: [Float], t: Int) -> (Float, Float) {
        multiplyAgainstFloat64(weight, reference: reference, x: x, t: t, integer: true)
    }

    func testIntegerKernelsMatchFloat64() throws {
        let model = try SharedLlama.model()
        let c = model.config, l0 = model.weights.layers[0]
        XCTAssertTrue(QuantIntDot.supports(l0.query.type) && QuantIntDot.supports(model.weights.outputHead.type))
        // Vector counts cover the 4-wide tiles and their remainders.
        for t in [1, 3, 4, 7, 32] {
            let x = try embeddings(model, count: t)
            // Q4_1 (C -> C) and Q8_0 (the tied output head: first 2,048 vocabulary rows).
            let (dq, rq) = compare(l0.query, reference: dense(l0.query), x: x, t: t)
            print("Q4_1 attn_q, T=\(t): max |diff| \(dq) (max |out| \(rq))")
            XCTAssertLessThan(dq, 5e-5 * max(1, rq))

            // Feed-forward activations (T, FF) for the K = 1536 down projection.
            var gate = [Float](repeating: 0, count: t * c.feedForwardLength), up = gate
            x.withUnsafeBufferPointer { xp in
                gate.withUnsafeMutableBufferPointer { g in
                    up.withUnsafeMutableBufferPointer { u in
                        QuantMatVec.multiply([l0.gate, l0.up], x: xp.baseAddress!, t: t, outputs: [g.baseAddress!, u.baseAddress!])
                        Ops.gatedActivation(g.baseAddress!, u.baseAddress!, count: t * c.feedForwardLength, activation: .silu)
                    }
                }
            }
            let (dd, rd) = compare(l0.down, reference: dense(l0.down), x: gate, t: t)
            print("Q4_1 ffn_down, T=\(t): max |diff| \(dd) (max |out| \(rd))")
            XCTAssertLessThan(dd, 5e-5 * max(1, rd))
        }
        let head = model.weights.outputHead
        let x = try embeddings(model, count: 5)
        let rows = 2048
        let part = try HeadSlice(head, rows: rows)
        let (dh, rh) = compare(part.weight, reference: Array(dense(head).prefix(rows * head.columns)), x: x, t: 5)
        print("Q8_0 output head (\(rows) rows), T=5: max |diff| \(dh) (max |out| \(rh))")
        XCTAssertLessThan(dh, 5e-5 * max(1, rh))
    }

    /// Q4_0 blocks quantized (as ggml's `quantize_row_q4_0`) from SmolLM2's real layer-0 query
    /// weights: the Q4_0 integer kernel against float64 on the same blocks dequantized.
    func testQ4_0KernelMatchesFloat64() throws {
        let model = try SharedLlama.model()
        let q = model.weights.layers[0].query
        let w = dense(q)
        let k = q.columns, r = q.rows, nb = k / 32
        var bytes = [UInt8](repeating: 0, count: r * nb * BlockQ4_0.size)
        for b in 0..<(r * nb) {
            let src = w[(32 * b)..<(32 * b + 32)]
            let amax = src.max(by: { abs($0) < abs($1) })!
            let d = amax / -8, id: Float = d == 0 ? 0 : 1 / d
            let o = b * BlockQ4_0.size
            let dh = Float16(d).bitPattern
            bytes[o] = UInt8(dh & 0xFF)
            bytes[o + 1] = UInt8(dh >> 8)
            for j in 0..<16 {
                let x0 = src[src.startIndex + j] * id, x1 = src[src.startIndex + j + 16] * id
                let q0 = UInt8(min(15, Int8(x0 + 8.5))), q1 = UInt8(min(15, Int8(x1 + 8.5)))
                bytes[o + 2 + j] = q0 | (q1 << 4)
            }
        }
        let t = 6
        let x = try embeddings(model, count: t)
        try bytes.withUnsafeBytes { raw in
            let weight = LinearWeight(name: "q4_0 test", type: .q4_0, rows: r, columns: k, raw: raw.baseAddress!)
            var reference = [Float](repeating: 0, count: r * k)
            try reference.withUnsafeMutableBufferPointer { try Dequantize.dequantize(.q4_0, from: raw, into: $0) }
            let (d, ref) = compare(weight, reference: reference, x: x, t: t)
            print("Q4_0 (re-quantized attn_q), T=\(t): max |diff| \(d) (max |out| \(ref))")
            XCTAssertLessThan(d, 5e-5 * max(1, ref))
        }
    }
}

/// `QuantMatVec.multiply` of `weight` with `x (T, K)` (integer or float kernels) against a float64
/// product with `reference (R, K)`, the same weights dequantized.
/// - Returns: max |diff| and max |reference output|.
func multiplyAgainstFloat64(_ weight: LinearWeight, reference: [Float], x: [Float], t: Int, integer: Bool) -> (Float, Float) {
    let k = weight.columns, r = weight.rows
    var out = [Float](repeating: .nan, count: t * r)
    x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBufferPointer { op in
            QuantMatVec.multiply([weight], x: xp.baseAddress!, t: t, outputs: [op.baseAddress!], integer: integer)
        }
    }
    var maxDiff: Float = 0, maxRef: Float = 0
    for v in 0..<t {
        for row in 0..<r {
            var s = 0.0
            for i in 0..<k { s += Double(reference[row * k + i]) * Double(x[v * k + i]) }
            maxDiff = max(maxDiff, abs(Float(s) - out[v * r + row]))
            maxRef = max(maxRef, abs(Float(s)))
        }
    }
    return (maxDiff, maxRef)
}

/// The first `rows` rows of a weight (its raw bytes stay in the mapped file).
private struct HeadSlice {
    let weight: LinearWeight
    init(_ w: LinearWeight, rows: Int) throws {
        weight = LinearWeight(name: w.name, type: w.type, rows: rows, columns: w.columns, raw: w.raw)
    }
}
