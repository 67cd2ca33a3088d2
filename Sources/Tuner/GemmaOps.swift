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
            for i in range {
                let x = g.value[i]
                let th = Foundation.tanh(geluK * (x + geluC * x * x * x))
                o.value[i] = 0.5 * x * (1 + th) * u.value[i]
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
            for i in range {
                let x = g.value[i], dy = d.value[i]
                let th = Foundation.tanh(geluK * (x + geluC * x * x * x))
                let gelu = 0.5 * x * (1 + th)
                let slope = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * geluK * (1 + 3 * geluC * x * x)
                dg.value[i] += dy * u.value[i] * slope
                du.value[i] += dy * gelu
            }
        }
    }
}
