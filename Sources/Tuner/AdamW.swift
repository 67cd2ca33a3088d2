import Foundation

/// AdamW (decoupled weight decay) over a flat parameter array, as `torch.optim.AdamW`:
/// `p -= lr·wd·p`; `m = β1·m + (1−β1)·g`; `v = β2·v + (1−β2)·g²`;
/// `p -= lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)`.
public struct AdamW: Sendable {
    /// Hyper-parameters (PyTorch defaults except the learning rate, which each step passes).
    public struct Hyper: Codable, Sendable, Equatable {
        public var beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0
        public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
            self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        }
    }

    public var hyper: Hyper
    /// Steps taken so far (t).
    public private(set) var step: Int = 0
    /// First and second moments `(P)` each.
    public private(set) var m: [Float], v: [Float]

    /// - Parameters: count: P, the parameter count; hyper: the hyper-parameters.
    public init(count: Int, hyper: Hyper) {
        self.hyper = hyper
        m = [Float](repeating: 0, count: count)
        v = m
    }

    /// Restores a saved state (from a checkpoint).
    public init(hyper: Hyper, step: Int, m: [Float], v: [Float]) {
        precondition(m.count == v.count, "AdamW: moment sizes differ")
        self.hyper = hyper; self.step = step; self.m = m; self.v = v
    }

    /// One update of `params` `(P)` with gradients `grads` `(P)` at learning rate `lr`.
    public mutating func update(params: UnsafeMutableBufferPointer<Float>, grads: UnsafeBufferPointer<Float>, lr: Float) {
        precondition(params.count == m.count && grads.count == m.count, "AdamW: size mismatch")
        step += 1
        let h = hyper
        let c1 = 1 - Float(Foundation.pow(Double(h.beta1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(h.beta2), Double(step)))
        let c2root = c2.squareRoot()
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                for i in 0..<params.count {
                    let g = grads[i]
                    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g
                    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g
                    var p = params[i] * (1 - lr * h.weightDecay)
                    p -= (lr / c1) * m[i] / (v[i].squareRoot() / c2root + h.eps)
                    params[i] = p
                }
            }
        }
    }
}
