import Foundation
import Tensor

// The op pair Gemma 3 adds to the Llama set: the GELU (tanh approximation) gate, GeGLU.
// Gemma 3's other differences reuse the Llama ops with other arguments: the scaled embedding
// (`embeddingForward(scale:)`), per-head q/k RMSNorm (`rmsnormForward` on `(N·NH, HS)` rows),
// rotate-half RoPE (`rope(style: .halves)`) and the sliding-window mask (`AttentionDims.window`).
// Dimension letters as in Ops.swift.

extension Ops {
    // MARK: GeGLU (GELU-tanh gate)

    /// √(2/π), the constant of the tanh approximation (the runtime's `Ops.gatedActivation`).
    static let geluK: Float = 0.797_884_56
    /// The cubic coefficient of the tanh approximation.
    static let geluC: Float = 0.044_715

    /// `out = gelu(gate) · up` with `gelu(g) = ½ g (1 + tanh(√(2/π) (g + 0.044715 g³)))`.
    /// - Parameters: out `(N, F)`; gate `(N, F)`; up `(N, F)`; count = N·F.
    public static func geluGateForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                                       up: UnsafePointer<Float>, count: Int) {
        let o = UncheckedSendable(out), g = UncheckedSendable(gate), u = UncheckedSendable(up)
        Parallel.forEach(0..<count, chunks: count >= 1 << 14 ? Parallel.coreCount : 1) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let x = VectorMath.load8(g.value + i)
                let gelu: SIMD8<Float> = 0.5 * x * (1 + tanh8(x))
                VectorMath.store8(gelu * VectorMath.load8(u.value + i), o.value + i)
                i += 8
            }
            while i < range.upperBound {
                let x = g.value[i]
                let th = Foundation.tanh(geluK * (x + geluC * x * x * x))
                o.value[i] = 0.5 * x * (1 + th) * u.value[i]
                i += 1
            }
        }
    }

    /// `dgate += dout · up · gelu'(g)`, `dup += dout · gelu(g)`, with
    /// `gelu'(g) = ½ (1 + tanh z) + ½ g (1 − tanh² z) √(2/π) (1 + 3·0.044715 g²)`, `z = √(2/π)(g + 0.044715 g³)`.
    /// - Parameters: dgate, dup, dout, gate, up all `(N, F)`; count = N·F.
    public static func geluGateBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                        dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                        up: UnsafePointer<Float>, count: Int) {
        let dg = UncheckedSendable(dgate), du = UncheckedSendable(dup), d = UncheckedSendable(dout)
        let g = UncheckedSendable(gate), u = UncheckedSendable(up)
        Parallel.forEach(0..<count, chunks: count >= 1 << 14 ? Parallel.coreCount : 1) { range in
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let x = VectorMath.load8(g.value + i), dy = VectorMath.load8(d.value + i)
                let th: SIMD8<Float> = tanh8(x)
                let half: SIMD8<Float> = 0.5 * (1 + th)
                let gelu: SIMD8<Float> = x * half
                let dz: SIMD8<Float> = geluK * (1 + 3 * geluC * x * x)
                let sech2: SIMD8<Float> = 1 - th * th
                let slope: SIMD8<Float> = half + 0.5 * x * sech2 * dz
                VectorMath.store8(VectorMath.load8(dg.value + i) + dy * VectorMath.load8(u.value + i) * slope, dg.value + i)
                VectorMath.store8(VectorMath.load8(du.value + i) + dy * gelu, du.value + i)
                i += 8
            }
            for j in i..<range.upperBound {
                let x = g.value[j], dy = d.value[j]
                let th = Foundation.tanh(geluK * (x + geluC * x * x * x))
                let gelu = 0.5 * x * (1 + th)
                let slope = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * geluK * (1 + 3 * geluC * x * x)
                dg.value[j] += dy * u.value[j] * slope
                du.value[j] += dy * gelu
            }
        }
    }

    /// `tanh(√(2/π) (x + 0.044715 x³))` for eight floats, as `1 − 2 / (e^{2z} + 1)`.
    @inline(__always)
    static func tanh8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let z: SIMD8<Float> = geluK * (x + geluC * x * x * x)
        let e: SIMD8<Float> = VectorMath.exp(2 * z)
        return 1 - 2 / (e + 1)
    }
}
