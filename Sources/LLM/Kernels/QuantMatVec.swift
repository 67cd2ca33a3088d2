import CKernels
import Tensor

/// Products of quantized weights with a few activation vectors, on all cores: the decode path.
///
/// Shapes: a weight is `(R, K)` (R output rows, K inputs); `x` holds `T` vectors `(T, K)`;
/// each output is `(T, R)`. Several weights that read the same `x` (q/k/v, gate/up) run in
/// one parallel pass so a decode step pays one thread hand-off per group, not per weight.
public enum QuantMatVec {
    /// Sums of consecutive 32 values of each of the `t` vectors: `(T, K/32)`.
    static func blockSums(_ x: UnsafePointer<Float>, t: Int, k: Int, into sums: UnsafeMutablePointer<Float>) {
        let nb = k / 32
        for v in 0..<t {
            for b in 0..<nb {
                let p = x + v * k + 32 * b
                sums[v * nb + b] = (load8(p) + load8(p + 8) + load8(p + 16) + load8(p + 24)).sum()
            }
        }
    }

    /// `outputs[i] (T, R_i) = x (T, K) · weights[i]ᵀ (+ bias)` for weights sharing `K`.
    ///
    /// - Parameters:
    ///   - weights: the weights, each `(R_i, K)`.
    ///   - x: `(T, K)` activations.
    ///   - t: number of vectors T (small: each weight row is reused from L1 for all of them).
    ///   - outputs: one `(T, R_i)` buffer per weight.
    ///   - integer: use the integer kernels (`QuantIntDot`) for the weights whose type has one;
    ///     default: when `t > 4`.
    public static func multiply(_ weights: [LinearWeight], x: UnsafePointer<Float>, t: Int,
                                outputs: [UnsafeMutablePointer<Float>], integer: Bool? = nil) {
        precondition(weights.count == outputs.count && !weights.isEmpty)
        let k = weights[0].columns
        precondition(weights.allSatisfy { $0.columns == k } && k % 32 == 0)
        if integer ?? (t > 4), weights.contains(where: { QuantIntDot.supports($0.type) }) {
            // Weights with an integer kernel go through it, the others (Gemma's Q4_K/Q6_K) stay float.
            let pairs = Array(zip(weights, outputs))
            let ints = pairs.filter { QuantIntDot.supports($0.0.type) }, floats = pairs.filter { !QuantIntDot.supports($0.0.type) }
            multiplyInteger(ints.map(\.0), x: x, t: t, outputs: ints.map(\.1))
            if !floats.isEmpty { multiply(floats.map(\.0), x: x, t: t, outputs: floats.map(\.1), integer: false) }
            return
        }
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: t * k / 32)
        defer { sums.deallocate() }
        blockSums(x, t: t, k: k, into: sums)
        // Rows of all weights, concatenated.
        var starts = [0]
        for w in weights { starts.append(starts.last! + w.rows) }
        let total = starts.last!
        let box = UncheckedSendable((x, UnsafePointer(sums), outputs))
        let chunks = total * k * t >= 1 << 16 ? Parallel.coreCount : 1
        Parallel.forEach(0..<total, chunks: chunks) { range in
            let (x, sums, outputs) = box.value
            var scratch: UnsafeMutablePointer<Float>? = nil
            defer { scratch?.deallocate() }
            var w = 0
            var r = range.lowerBound
            while r < range.upperBound {
                while starts[w + 1] <= r { w += 1 }
                let weight = weights[w], out = outputs[w]
                let end = min(range.upperBound, starts[w + 1])
                let rows = (r - starts[w])..<(end - starts[w])
                if QuantDot.usesC(weight.type) {
                    for v in 0..<t {
                        ck_qdot_rows(Int32(weight.type.rawValue), weight.raw + rows.lowerBound * weight.rowBytes, weight.rowBytes,
                                     rows.count, x + v * k, sums + v * (k / 32), k, out + v * weight.rows + rows.lowerBound)
                    }
                } else if QuantDot.isFused(weight.type) {
                    for row in rows {
                        let p = weight.raw + row * weight.rowBytes
                        for v in 0..<t {
                            out[v * weight.rows + row] = QuantDot.dot(weight.type, p, x + v * k, sums + v * (k / 32), columns: k)
                        }
                    }
                } else {
                    if scratch == nil { scratch = .allocate(capacity: k) }
                    for row in rows {
                        Dequantize.dequantizeUnchecked(weight.type, from: weight.raw + row * weight.rowBytes, count: k, into: scratch!)
                        for v in 0..<t { out[v * weight.rows + row] = QuantDot.f32(scratch!, x + v * k, k) }
                    }
                }
                if let bias = weight.bias {
                    for v in 0..<t {
                        for row in rows { out[v * weight.rows + row] += bias[row] }
                    }
                }
                r = end
            }
        }
    }

    /// `multiply` through the integer kernels (`QuantIntDot`): `x` quantized to int16 once,
    /// each weight row read once for all `t` vectors (tiles of 4).
    static func multiplyInteger(_ weights: [LinearWeight], x: UnsafePointer<Float>, t: Int,
                                outputs: [UnsafeMutablePointer<Float>]) {
        let k = weights[0].columns
        let xq = QuantizedActivations(x, vectors: t, columns: k)
        defer { xq.deallocate() }
        var starts = [0]
        for w in weights { starts.append(starts.last! + w.rows) }
        let total = starts.last!
        let box = UncheckedSendable((xq, outputs))
        let chunks = total * k * t >= 1 << 16 ? Parallel.coreCount : 1
        Parallel.forEach(0..<total, chunks: chunks) { range in
            let (xq, outputs) = box.value
            var w = 0
            var r = range.lowerBound
            while r < range.upperBound {
                while starts[w + 1] <= r { w += 1 }
                let weight = weights[w], out = outputs[w]
                let rows = (r - starts[w])..<(min(range.upperBound, starts[w + 1]) - starts[w])
                // Blocks of rows (a few KB of weights, kept in L1/L2) x tiles of 4 vectors (kept in L1).
                for block in stride(from: rows.lowerBound, to: rows.upperBound, by: 16) {
                    let blockRows = block..<min(block + 16, rows.upperBound)
                    var v = 0
                    while v < t {
                        let n = min(4, t - v)
                        if QuantIntDot.usesC(weight.type) {
                            let nb = k / 32
                            ck_qdot_i16_rows(Int32(weight.type.rawValue), weight.raw + block * weight.rowBytes, weight.rowBytes,
                                             blockRows.count, xq.values + v * k, xq.scales + v * nb, xq.sums + v * nb,
                                             n, k, out + v * weight.rows + block, weight.rows)
                        } else {
                            for row in blockRows {
                                QuantIntDot.dot(weight.type, weight.raw + row * weight.rowBytes, xq, first: v, count: n,
                                                out: out + v * weight.rows + row, outStride: weight.rows)
                            }
                        }
                        v += n
                    }
                }
                if let bias = weight.bias {
                    for v in 0..<t { for row in rows { out[v * weight.rows + row] += bias[row] } }
                }
                r = starts[w] + rows.upperBound
            }
        }
    }
}
