import Foundation
import Tensor

// LoRA adapters at inference: loading the three forms the tuner (and PEFT / llama.cpp) write,
// checking them against a model, and the per-weight delta `y += scale · B (A x)`.
//
// Dimension letters: R rows of a step, IN/OUT features of the adapted linear, r the rank.
// Orientation: our runtime keeps the q/k rows of Llama files in the order llama.cpp's converter
// permuted them to (adjacent-pair RoPE); Hugging Face (PEFT) keeps the original order. Within each
// head of HS rows, HF row `half·HS/2 + i` is GGUF row `2i + half`. Only B (output side) moves.

/// Everything that can go wrong loading an adapter or fitting it to a model. Payloads name the
/// adapter file, the tensor and the expected vs actual value.
public enum AdapterError: LocalizedError, Equatable, Sendable {
    /// The path is none of the accepted forms.
    case notAnAdapter(path: String, detail: String)
    /// A file of the adapter is missing, truncated or malformed.
    case unreadable(path: String, detail: String)
    /// A tensor name maps to no adaptable weight of the model.
    case unknownTensor(path: String, tensor: String, detail: String)
    /// A tensor's shape does not fit the weight it adapts.
    case wrongShape(path: String, tensor: String, expected: [Int], actual: [Int])
    /// The adapter records another base model than the one it is applied to.
    case wrongBaseModel(path: String, adapterBase: String, model: String)
    /// A feature of the adapter (DoRA, rank patterns, …) that this runtime does not apply.
    case unsupported(path: String, feature: String)
    /// Writing a merged model failed.
    case writeFailed(path: String, detail: String)

    public var errorDescription: String? {
        switch self {
        case let .notAnAdapter(path, detail):
            return "\(path): not a LoRA adapter (\(detail)); expected a tune run folder (adapter.gguf or"
                + " checkpoints/latest), a PEFT folder (adapter_config.json + adapter_model.safetensors) or a GGUF LoRA file"
        case let .unreadable(path, detail): return "\(path): cannot read the adapter: \(detail)"
        case let .unknownTensor(path, tensor, detail): return "\(path): adapter tensor '\(tensor)': \(detail)"
        case let .wrongShape(path, tensor, expected, actual):
            return "\(path): adapter tensor '\(tensor)' has shape \(actual), the model needs \(expected)"
        case let .wrongBaseModel(path, adapterBase, model):
            return "\(path): the adapter was trained on \(adapterBase), not on this model \(model)"
        case let .unsupported(path, feature): return "\(path): \(feature) is not supported"
        case let .writeFailed(path, detail): return "cannot write \(path): \(detail)"
        }
    }
}

/// A LoRA adapter: for some linear weights `W (OUT, IN)` of a model, `A (r, IN)` and `B (OUT, r)`
/// with `W' = W + scale · B A`.
///
/// Load one with ``init(path:)``; apply it with `loadLanguageModel(file:options:adapter:)`, in the
/// forward pass (default) or merged into float32 weights (`options.adapterMode = .merged`).
public struct LoRAAdapter: Sendable {
    /// The form the adapter was read from.
    public enum Format: String, Sendable {
        /// A llama.cpp LoRA GGUF (`adapter.gguf`), GGUF row order.
        case gguf
        /// A PEFT folder, Hugging Face row order.
        case peft
        /// A tuner checkpoint (`checkpoints/*/adapter.safetensors`), GGUF row order.
        case checkpoint
    }

    /// Row order of B for q and k (see the top of this file).
    public enum Orientation: String, Sendable { case gguf, huggingFace }

    /// One adapted weight: A `(r, IN)`, B `(OUT, r)`, and its scale (alpha / r).
    public struct Pair: Sendable {
        public var a: [Float], b: [Float]
        public var rank: Int, inputs: Int, outputs: Int
        public var scale: Float

        /// - Parameters: a `(rank, inputs)`, b `(outputs, rank)`, scale the branch factor.
        public init(a: [Float], b: [Float], rank: Int, inputs: Int, outputs: Int, scale: Float) {
            precondition(a.count == rank * inputs && b.count == outputs * rank, "LoRA pair sizes do not match their dims")
            self.a = a; self.b = b; self.rank = rank; self.inputs = inputs; self.outputs = outputs; self.scale = scale
        }
    }

    /// What the adapter records about the model it was trained on (each field optional).
    public struct BaseModel: Sendable, Equatable {
        public var architecture: String?
        public var name: String?
        public var embeddingLength: Int?, blockCount: Int?, vocabularySize: Int?

        public init(architecture: String? = nil, name: String? = nil, embeddingLength: Int? = nil,
                    blockCount: Int? = nil, vocabularySize: Int? = nil) {
            self.architecture = architecture; self.name = name
            self.embeddingLength = embeddingLength; self.blockCount = blockCount; self.vocabularySize = vocabularySize
        }

        /// The identity of a loaded model: its architecture, `general.name` (or file name) and dims.
        public init(file: GGUFFile, config: ModelConfig) {
            self.init(architecture: config.architecture,
                      name: file.metadata["general.name"]?.stringValue ?? URL(fileURLWithPath: file.path).lastPathComponent,
                      embeddingLength: config.embeddingLength, blockCount: config.layerCount,
                      vocabularySize: config.vocabularySize)
        }

        /// E.g. `llama 'SmolLM2 135M Instruct' (C=576, L=30, V=49152)`.
        public var description: String {
            var dims: [String] = []
            if let c = embeddingLength { dims.append("C=\(c)") }
            if let l = blockCount { dims.append("L=\(l)") }
            if let v = vocabularySize { dims.append("V=\(v)") }
            return [architecture ?? "unknown architecture", name.map { "'\($0)'" }, dims.isEmpty ? nil : "(\(dims.joined(separator: ", ")))"]
                .compactMap { $0 }.joined(separator: " ")
        }

        /// Whether the recorded fields (architecture and dims; names may differ between
        /// quantizations of one model) agree with `model`.
        public func isCompatible(with model: BaseModel) -> Bool {
            func same<T: Equatable>(_ a: T?, _ b: T?) -> Bool { a == nil || b == nil || a == b }
            return same(architecture, model.architecture) && same(embeddingLength, model.embeddingLength)
                && same(blockCount, model.blockCount) && same(vocabularySize, model.vocabularySize)
        }
    }

    /// The file the tensors were read from (for error messages and provenance).
    public var path: String
    public var format: Format
    public var orientation: Orientation
    /// The base model the adapter records, if any.
    public var base: BaseModel?
    /// Adapted weights by the model's GGUF tensor name, e.g. `blk.3.attn_q.weight`.
    public var pairs: [String: Pair]

    /// An adapter from tensors in memory (tests, converters).
    /// - Parameters: pairs by GGUF weight name; orientation of their q/k B rows; path for messages.
    public init(pairs: [String: Pair], orientation: Orientation = .gguf, base: BaseModel? = nil,
                path: String = "<memory>", format: Format = .gguf) {
        self.pairs = pairs; self.orientation = orientation; self.base = base; self.path = path; self.format = format
    }

    /// The largest rank of any pair.
    public var rank: Int { pairs.values.map(\.rank).max() ?? 0 }

    // MARK: Fitting to a model

    /// Checks the adapter against a model and builds its deltas (B in the model's row order,
    /// pre-multiplied by the scale).
    /// - Parameters: file and config of the model; weights: its adaptable linears by tensor name.
    /// - Throws: ``AdapterError/wrongBaseModel(path:adapterBase:model:)``, `.unknownTensor`, `.wrongShape`.
    func deltas(file: GGUFFile, config: ModelConfig, weights: [String: LinearWeight]) throws -> [String: LoRADelta] {
        let model = BaseModel(file: file, config: config)
        if let base, !base.isCompatible(with: model) {
            throw AdapterError.wrongBaseModel(path: path, adapterBase: base.description, model: "\(file.path): \(model.description)")
        }
        // Hugging Face order differs only where llama.cpp's converter permuted q/k (the llama family).
        let permute = orientation == .huggingFace && config.architecture == "llama"
        var out: [String: LoRADelta] = [:]
        for (name, p) in pairs.sorted(by: { $0.key < $1.key }) {
            guard let w = weights[name] else {
                throw AdapterError.unknownTensor(path: path, tensor: name,
                                                 detail: "the model \(file.path) has no adaptable weight of that name")
            }
            guard p.inputs == w.columns else {
                throw AdapterError.wrongShape(path: path, tensor: name + " (lora A)", expected: [p.rank, w.columns], actual: [p.rank, p.inputs])
            }
            guard p.outputs == w.rows else {
                throw AdapterError.wrongShape(path: path, tensor: name + " (lora B)", expected: [w.rows, p.rank], actual: [p.outputs, p.rank])
            }
            let isQK = name.hasSuffix(".attn_q.weight") || name.hasSuffix(".attn_k.weight")
            var b = p.b
            if permute && isQK { b = Self.ggufOrderB(p.b, rows: p.outputs, rank: p.rank, headSize: config.headSize) }
            out[name] = LoRADelta(a: p.a, scaledB: b.map { $0 * p.scale }, rank: p.rank, inputs: p.inputs, outputs: p.outputs)
        }
        return out
    }

    /// The Hugging Face row of GGUF row `row` of a q or k projection with heads of `hs` rows.
    public static func hfRow(ofGGUFRow row: Int, headSize hs: Int) -> Int {
        let head = row / hs, within = row % hs
        return head * hs + (within % 2) * (hs / 2) + within / 2
    }

    /// B `(OUT, r)` with rows moved from Hugging Face to GGUF order.
    public static func ggufOrderB(_ b: [Float], rows: Int, rank: Int, headSize: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * rank)
        for row in 0..<rows {
            let src = hfRow(ofGGUFRow: row, headSize: headSize)
            for j in 0..<rank { out[row * rank + j] = b[src * rank + j] }
        }
        return out
    }
}

// MARK: - The delta of one weight

/// `y (R, OUT) += x (R, IN) · Aᵀ · (scale·B)ᵀ`, or merged: `W (OUT, IN) += scale · B A`.
final class LoRADelta: @unchecked Sendable {
    // @unchecked: immutable after init.
    let rank: Int, inputs: Int, outputs: Int
    let a: [Float]  // (r, IN)
    let scaledB: [Float]  // (OUT, r), times alpha / r

    init(a: [Float], scaledB: [Float], rank: Int, inputs: Int, outputs: Int) {
        self.a = a; self.scaledB = scaledB; self.rank = rank; self.inputs = inputs; self.outputs = outputs
    }

    /// Adds the branch to `out (R, OUT)` for the inputs `x (R, IN)`: two small matrix products.
    func apply(_ x: UnsafePointer<Float>, rows r: Int, into out: UnsafeMutablePointer<Float>) {
        let xa = UnsafeMutablePointer<Float>.allocate(capacity: r * rank)  // (R, r)
        defer { xa.deallocate() }
        a.withUnsafeBufferPointer { a in
            BLAS.gemm(a: x, b: a.baseAddress!, transB: true, c: xa, m: r, n: rank, k: inputs, parallel: r > 4)
        }
        scaledB.withUnsafeBufferPointer { b in
            BLAS.gemm(a: xa, b: b.baseAddress!, transB: true, c: out, m: r, n: outputs, k: rank, beta: 1, parallel: r > 4)
        }
    }

    /// `w (OUT, IN) += scale · B A`.
    func merge(into w: UnsafeMutablePointer<Float>) {
        a.withUnsafeBufferPointer { a in
            scaledB.withUnsafeBufferPointer { b in
                BLAS.gemm(a: b.baseAddress!, b: a.baseAddress!, c: w, m: outputs, n: inputs, k: rank, beta: 1, parallel: true)
            }
        }
    }

    /// A float32 weight `W + scale · B A` from `weight`'s values (its copy or dequantized).
    func merged(_ weight: LinearWeight) -> LinearWeight {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: weight.rows * weight.columns)  // (OUT, IN)
        if let dense = weight.dense {
            buffer.update(from: dense, count: weight.rows * weight.columns)
        } else {
            weight.dequantizeRows(0..<weight.rows, into: buffer)
        }
        merge(into: buffer)
        return LinearWeight(name: weight.name, rows: weight.rows, columns: weight.columns, owning: buffer, bias: weight.bias)
    }
}

// MARK: - Applying to a model's linears

/// How an adapter given to a model is applied.
public enum AdapterMode: String, Sendable, CaseIterable {
    /// `y = W x + scale · B (A x)` in every step (the base weights stay as they are).
    case inForward = "forward"
    /// `W + scale · B A` computed once at load time as float32 weights (4 bytes per adapted weight).
    case merged = "merge"
}

extension Dictionary where Key == String, Value == LoRADelta {
    /// Adds each weight's branch (if it has one) to its output: `outputs[i] (R, OUT_i) += …`.
    func apply(_ ws: [LinearWeight], _ x: UnsafePointer<Float>, rows r: Int, outputs: [UnsafeMutablePointer<Float>]) {
        guard !isEmpty else { return }
        for (w, out) in zip(ws, outputs) { self[w.name]?.apply(x, rows: r, into: out) }
    }
}
