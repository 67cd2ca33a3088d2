import Foundation
import Tensor

/// The elementwise and per-row operations of the transformer block, on float32 rows.
///
/// Dimension letters as in `ModelConfig`: T rows (tokens), C channels, HS head size.
public enum Ops {
    // MARK: RMSNorm

    /// `out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w` (or `* (1 + w)` for `.onePlusWeight`).
    /// - Parameters:
    ///   - out: `(T, C)`; may equal `x`.
    ///   - x: `(T, C)`.
    ///   - weight: `(C)`.
    public static func rmsNorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, weight: [Float],
                               rows: Int, channels c: Int, epsilon: Float, style: ModelConfig.NormStyle = .plain) {
        weight.withUnsafeBufferPointer { w in
            for t in 0..<rows {
                let xr = x + t * c, yr = out + t * c
                let ss = QuantDot.f32(xr, xr, c)
                let inv = 1 / (ss / Float(c) + epsilon).squareRoot()
                let shift: Float = style == .onePlusWeight ? 1 : 0
                for i in 0..<c { yr[i] = xr[i] * inv * (w[i] + shift) }
            }
        }
    }

    // MARK: RoPE

    /// Cosines and sines of RoPE angles `(T, HS/2)` for `positions`, as Hugging Face computes
    /// them: `invFreq[i] = 1 / base^(2i/HS)` and `angle = position * invFreq[i]` in float32.
    public static func ropeTable(positions: [Int], headSize hs: Int, base: Float) -> (cos: [Float], sin: [Float]) {
        let half = hs / 2
        let invFreq = (0..<half).map { i in 1 / Float(pow(Double(base), Double(2 * i) / Double(hs))) }
        var cosTable = [Float](repeating: 0, count: positions.count * half)
        var sinTable = cosTable
        for (t, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Double(Float(p) * invFreq[i])
                cosTable[t * half + i] = Float(Foundation.cos(angle))
                sinTable[t * half + i] = Float(Foundation.sin(angle))
            }
        }
        return (cosTable, sinTable)
    }

    /// Rotates every head of `x` in place.
    /// - Parameters:
    ///   - x: `(T, heads * HS)`, with row stride `stride`.
    ///   - cos, sin: `(T, HS/2)` from `ropeTable`.
    public static func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, heads: Int, headSize hs: Int,
                            cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, style: ModelConfig.RoPEStyle) {
        let half = hs / 2
        for t in 0..<rows {
            let c = cos + t * half, s = sin + t * half
            for h in 0..<heads {
                let v = x + t * stride + h * hs
                for i in 0..<half {
                    let (a, b) = style == .adjacentPairs ? (2 * i, 2 * i + 1) : (i, i + half)
                    let x0 = v[a], x1 = v[b]
                    v[a] = x0 * c[i] - x1 * s[i]
                    v[b] = x0 * s[i] + x1 * c[i]
                }
            }
        }
    }

    // MARK: Gated feed-forward

    /// `gate = act(gate) * up`, in place, for `count` values.
    public static func gatedActivation(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int,
                                       activation: ModelConfig.Activation) {
        var i = 0
        while i + 8 <= count {
            let g = load8(gate + i)
            let a: SIMD8<Float>
            switch activation {
            case .silu:
                a = g / (1 + VectorMath.exp(-g))
            case .geluTanh:
                // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tanh(u) = 1 - 2 / (e^{2u} + 1)
                let u = 0.797_884_56 * (g + 0.044_715 * g * g * g)
                let tanh = 1 - 2 / (VectorMath.exp(2 * u) + 1)
                a = 0.5 * g * (1 + tanh)
            }
            UnsafeMutableRawPointer(gate + i).storeBytes(of: a * load8(up + i), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            let g = gate[i]
            switch activation {
            case .silu: gate[i] = g / (1 + Foundation.exp(-g)) * up[i]
            case .geluTanh:
                gate[i] = 0.5 * g * (1 + Foundation.tanh(0.797_884_56 * (g + 0.044_715 * g * g * g))) * up[i]
            }
            i += 1
        }
    }

    /// `x += y` for `count` values.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }
}
