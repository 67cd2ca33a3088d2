import Foundation
import Tensor

// LoRA adapters: which projections get one, their hyper-parameters, and all A/B matrices in one
// allocation with named views (llm.c style). Dimension letters as in Ops.swift.

/// A projection of a Llama, Qwen2 or Gemma 3 block that can carry a LoRA adapter.
public enum LoRATarget: String, CaseIterable, Codable, Sendable {
    case q, k, v, o, gate, up, down

    /// The Hugging Face module name (`q_proj`, …).
    public var hfName: String { rawValue + "_proj" }
    /// The Hugging Face parent module (`self_attn` or `mlp`).
    public var hfParent: String { [.q, .k, .v, .o].contains(self) ? "self_attn" : "mlp" }

    /// Parses `q`, `q_proj`, `gate`, … .
    public init?(name: String) {
        let stem = name.hasSuffix("_proj") ? String(name.dropLast(5)) : name
        self.init(rawValue: stem)
    }

    /// `(in, out)` features of this projection.
    public func features(_ c: TrainModelConfig) -> (inF: Int, outF: Int) {
        switch self {
        case .q: return (c.width, c.queryWidth)
        case .o: return (c.queryWidth, c.width)
        case .k, .v: return (c.width, c.kvWidth)
        case .gate, .up: return (c.width, c.ffn)
        case .down: return (c.ffn, c.width)
        }
    }
}

/// LoRA hyper-parameters (defaults: r = 8, alpha = 16, no dropout, all seven targets).
public struct LoRAConfig: Codable, Sendable, Equatable {
    /// Rank r.
    public var rank: Int = 8
    /// The branch is scaled by alpha / r.
    public var alpha: Float = 16
    /// Dropout probability on the branch's input (training only).
    public var dropout: Float = 0
    /// Projections with an adapter, in ``LoRATarget/allCases`` order.
    public var targets: [LoRATarget] = LoRATarget.allCases

    /// The branch scale alpha / r.
    public var scale: Float { alpha / Float(rank) }

    /// - Parameters: rank, alpha, dropout, targets as the properties.
    public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0, targets: [LoRATarget] = LoRATarget.allCases) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = LoRATarget.allCases.filter { targets.contains($0) }
    }
}

/// Where one adapter's A `(r, IN)` and B `(OUT, r)` live in the flat parameter array.
public struct LoRASlot: Sendable, Equatable {
    public let layer: Int
    public let target: LoRATarget
    public let inF: Int, outF: Int
    /// Offsets of A and B in ``LoRAParameters/values`` (and of their gradients in `grads`).
    public let offsetA: Int, offsetB: Int
}

/// All LoRA matrices and their gradients, each in one contiguous allocation.
public final class LoRAParameters: @unchecked Sendable {
    public let config: LoRAConfig
    public let model: TrainModelConfig
    /// Every adapter, layer-major, targets in ``LoRAConfig/targets`` order.
    public let slots: [LoRASlot]
    /// Parameters `(P)` and gradients `(P)`.
    public let values: UnsafeMutableBufferPointer<Float>, grads: UnsafeMutableBufferPointer<Float>
    private let index: [Int: Int]   // layer * 8 + target ordinal -> slot

    /// Allocates zeroed adapters for `model`.
    public init(config: LoRAConfig, model: TrainModelConfig) {
        self.config = config
        self.model = model
        var slots: [LoRASlot] = [], offset = 0, index: [Int: Int] = [:]
        for layer in 0..<model.layers {
            for target in config.targets {
                let (i, o) = target.features(model)
                index[layer * 8 + LoRATarget.allCases.firstIndex(of: target)!] = slots.count
                slots.append(LoRASlot(layer: layer, target: target, inF: i, outF: o,
                                      offsetA: offset, offsetB: offset + config.rank * i))
                offset += config.rank * (i + o)
            }
        }
        self.slots = slots
        self.index = index
        values = .allocate(capacity: offset)
        values.initialize(repeating: 0)
        grads = .allocate(capacity: offset)
        grads.initialize(repeating: 0)
    }

    deinit {
        values.deallocate()
        grads.deallocate()
    }

    /// P, the number of trainable parameters.
    public var count: Int { values.count }

    /// The slot of `target` in `layer`, or `nil` when it has no adapter.
    public func slot(layer: Int, target: LoRATarget) -> LoRASlot? {
        index[layer * 8 + LoRATarget.allCases.firstIndex(of: target)!].map { slots[$0] }
    }

    /// A `(r, IN)`, B `(OUT, r)` and their gradients for one slot.
    public func views(_ s: LoRASlot) -> (a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>,
                                         da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>) {
        (values.baseAddress! + s.offsetA, values.baseAddress! + s.offsetB,
         grads.baseAddress! + s.offsetA, grads.baseAddress! + s.offsetB)
    }

    /// Sets every gradient to zero.
    public func zeroGrads() { grads.update(repeating: 0) }

    // MARK: Initialisation

    /// The closed-form initialisation of `Tests/Fixtures/golden/make_lora_golden.py`:
    /// `A[i, j] = 0.02 sin(0.37 (i·IN + j) + 0.11 layer)`;
    /// `B[i, j] = 0.01 cos(0.53 (i·r + j) + 0.07 layer)` in Hugging Face row order for v, o, gate,
    /// up, down, and `B = 0` for q and k.
    public func initializeClosedForm() {
        let r = config.rank
        for s in slots {
            let (a, b, _, _) = views(s)
            for i in 0..<r {
                for j in 0..<s.inF {
                    a[i * s.inF + j] = Float(0.02 * sin(0.37 * Double(i * s.inF + j) + 0.11 * Double(s.layer)))
                }
            }
            for i in 0..<s.outF {
                for j in 0..<r {
                    b[i * r + j] = s.target == .q || s.target == .k
                        ? 0 : Float(0.01 * cos(0.53 * Double(i * r + j) + 0.07 * Double(s.layer)))
                }
            }
        }
    }

    /// The standard LoRA initialisation: A ~ Kaiming-uniform (bound `1/sqrt(IN)`, as PEFT), B = 0,
    /// so training starts from the base model.
    public func initializeRandom(rng: inout SplitMix64) {
        for s in slots {
            let (a, b, _, _) = views(s)
            let bound = 1 / Float(s.inF).squareRoot()
            for i in 0..<(config.rank * s.inF) { a[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
            b.update(repeating: 0, count: s.outF * config.rank)
        }
    }

    // MARK: Names

    /// The PEFT tensor name of a slot's A or B, e.g. `layers.3.mlp.up_proj.lora_B.weight` (without
    /// the `base_model.model.model.` prefix).
    public static func peftName(layer: Int, target: LoRATarget, isB: Bool) -> String {
        "layers.\(layer).\(target.hfParent).\(target.hfName).lora_\(isB ? "B" : "A").weight"
    }
}

