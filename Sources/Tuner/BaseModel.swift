import Foundation
import LLM
import Tensor

// The frozen base model the tuner differentiates: the runtime's `ModelWeights` of a Llama, Qwen2 or
// Gemma 3 GGUF, dequantized to float32.
// Dimension letters as in Ops.swift; QW = NH·HS.

/// How the frozen base weights are held while training.
public enum BasePrecision: String, Codable, Sendable, CaseIterable {
    /// Every weight dequantized to float32 once at load (fastest).
    case float32
    /// The block projections stay quantized (memory-mapped from the GGUF) and are dequantized one
    /// matrix at a time into a scratch buffer when used (the QLoRA idea: less memory, more work).
    case quantized
}

/// One frozen projection `(OUT, IN)`: float32 in memory, or the runtime's quantized weight
/// dequantized on use.
public struct FrozenWeight: @unchecked Sendable {
    // @unchecked: read-only after load; the GGUF mapping outlives the model.
    /// OUT and IN.
    public let rows: Int, columns: Int
    private let dense: UnsafeMutablePointer<Float>?
    private let quantized: LinearWeight?

    init(dense: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        self.dense = dense; quantized = nil; self.rows = rows; self.columns = columns
    }

    init(quantized weight: LinearWeight) {
        dense = nil; quantized = weight; rows = weight.rows; columns = weight.columns
    }

    /// Whether the weight is dequantized on every use.
    public var isQuantized: Bool { quantized != nil }

    /// The float32 weight: the stored one, or the quantized one dequantized into `scratch` (at
    /// least OUT·IN floats) on all cores.
    public func floats(scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        if let dense { return UnsafePointer(dense) }
        guard let quantized, let scratch else { preconditionFailure("a quantized weight needs a scratch buffer") }
        quantized.dequantizeRows(0..<rows, into: scratch)
        return UnsafePointer(scratch)
    }
}

/// The frozen weights of one transformer block (views into ``BaseModel``'s allocation).
public struct BlockWeights {
    /// attnNorm `(C)`, ffnNorm `(C)`.
    public let attnNorm: UnsafeMutablePointer<Float>, ffnNorm: UnsafeMutablePointer<Float>
    /// Gemma 3 only (`nil` for Llama): the per-head q and k norms `(HS)`, and the post-attention
    /// and post-feed-forward norms `(C)`. Stored as the GGUF has them (`1 + w` already added).
    public let qNorm: UnsafeMutablePointer<Float>?, kNorm: UnsafeMutablePointer<Float>?
    public let postAttnNorm: UnsafeMutablePointer<Float>?, postFFNNorm: UnsafeMutablePointer<Float>?
    /// wq `(QW, C)`, wk `(KV, C)`, wv `(KV, C)`, wo `(C, QW)`, all `(out, in)`; Llama's q/k rows
    /// in GGUF's permuted order (Qwen2's and Gemma 3's are not permuted).
    public let wq: FrozenWeight, wk: FrozenWeight, wv: FrozenWeight, wo: FrozenWeight
    /// wgate `(F, C)`, wup `(F, C)`, wdown `(C, F)`.
    public let wgate: FrozenWeight, wup: FrozenWeight, wdown: FrozenWeight
    /// The frozen biases of q `(QW)`, k `(KV)` and v `(KV)`, float32 in both precisions; `nil`
    /// unless ``TrainModelConfig/attentionBias`` (Qwen2).
    public let bq: UnsafeMutablePointer<Float>?, bk: UnsafeMutablePointer<Float>?, bv: UnsafeMutablePointer<Float>?

    /// The frozen weight of a LoRA target.
    public func weight(_ target: LoRATarget) -> FrozenWeight {
        switch target {
        case .q: return wq
        case .k: return wk
        case .v: return wv
        case .o: return wo
        case .gate: return wgate
        case .up: return wup
        case .down: return wdown
        }
    }

    /// The frozen bias `(OUT)` of a LoRA target's projection, or `nil` when it has none.
    public func bias(_ target: LoRATarget) -> UnsafeMutablePointer<Float>? {
        switch target {
        case .q: return bq
        case .k: return bk
        case .v: return bv
        case .o, .gate, .up, .down: return nil
        }
    }
}

/// A Llama, Qwen2 or Gemma 3 GGUF's weights as float32, in one allocation with named views (llm.c style); with
/// ``BasePrecision/quantized`` the block projections stay in the GGUF's quantized form instead.
public final class BaseModel: @unchecked Sendable {
    /// The configuration.
    public let config: TrainModelConfig
    /// How the block projections are held.
    public let precision: BasePrecision
    /// The file the weights came from.
    public let path: String
    /// Token embedding `(V, C)`, also the output head when the model ties them.
    public let wte: UnsafeMutablePointer<Float>
    /// Output head `(V, C)`: `output.weight` when the file has one (Qwen2.5-Coder), else `wte`
    /// itself (tied: SmolLM2, Gemma 3).
    public let head: UnsafeMutablePointer<Float>
    /// Final RMSNorm weight `(C)`.
    public let outNorm: UnsafeMutablePointer<Float>
    /// Per-layer weights.
    public let blocks: [BlockWeights]
    private let storage: UnsafeMutableBufferPointer<Float>

    /// Loads `file` through the runtime's ``ModelWeights``: embeddings, head, norms and biases as
    /// float32; block projections as `precision` says.
    /// - Throws: `TunerError.invalidModel` for a configuration the tuner cannot train;
    ///   `ModelError` naming a missing or mis-shaped tensor or a type that cannot be dequantized.
    public init(file: GGUFFile, precision: BasePrecision = .float32) throws {
        let (cfg, weights) = try TrainModelConfig.read(file)
        config = cfg
        path = file.path
        self.precision = precision
        let c = cfg.width, kv = cfg.kvWidth, f = cfg.ffn, v = cfg.vocab, qw = cfg.queryWidth, hs = cfg.headSize
        let norms = 2 * c + (cfg.queryKeyNorm ? 2 * hs : 0) + (cfg.postNorms ? 2 * c : 0)
        let biases = cfg.attentionBias ? qw + 2 * kv : 0
        let perBlock = norms + biases + (precision == .float32 ? 2 * qw * c + 2 * kv * c + 3 * f * c : 0)
        let total = v * c * (cfg.tiedEmbeddings ? 1 : 2) + c + cfg.layers * perBlock
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
        storage = buffer
        var cursor = buffer.baseAddress!
        func take(_ count: Int) -> UnsafeMutablePointer<Float> { defer { cursor += count }; return cursor }
        func load(_ w: LinearWeight) -> UnsafeMutablePointer<Float> {
            let out = take(w.rows * w.columns)
            w.dequantizeRows(0..<w.rows, into: out)   // on all cores (a 1.5B base is ≈ 6 GB of floats)
            return out
        }
        func load(_ values: [Float]) -> UnsafeMutablePointer<Float> {
            let out = take(values.count)
            out.update(from: values, count: values.count)
            return out
        }
        func load(_ values: [Float]?) -> UnsafeMutablePointer<Float>? { values.map(load) }
        func frozen(_ w: LinearWeight) -> FrozenWeight {
            precision == .float32 ? FrozenWeight(dense: load(w), rows: w.rows, columns: w.columns) : FrozenWeight(quantized: w)
        }
        wte = load(weights.tokenEmbedding)
        head = cfg.tiedEmbeddings ? wte : load(weights.outputHead)
        outNorm = load(weights.outputNorm)
        blocks = weights.layers.map { w in
            BlockWeights(attnNorm: load(w.attentionNorm), ffnNorm: load(w.ffnNorm), qNorm: load(w.queryNorm),
                         kNorm: load(w.keyNorm), postAttnNorm: load(w.postAttentionNorm), postFFNNorm: load(w.postFFNNorm),
                         wq: frozen(w.query), wk: frozen(w.key), wv: frozen(w.value), wo: frozen(w.output),
                         wgate: frozen(w.gate), wup: frozen(w.up), wdown: frozen(w.down),
                         bq: load(w.query.bias), bk: load(w.key.bias), bv: load(w.value.bias))
        }
        precondition(cursor == buffer.baseAddress! + total, "base weight layout mismatch")
    }

    /// Opens `path` and loads it.
    public convenience init(path: String, precision: BasePrecision = .float32) throws {
        try self.init(file: try GGUFFile(path: path), precision: precision)
    }

    deinit { storage.deallocate() }

    /// Bytes held by the float32 weights (the quantized projections are mapped from the file).
    public var byteCount: Int { storage.count * MemoryLayout<Float>.stride }

    /// Floats a scratch buffer needs to dequantize the largest projection (0 for a float32 base).
    public var scratchCount: Int {
        precision == .float32 ? 0 : blocks.flatMap { b in LoRATarget.allCases.map { b.weight($0) } }.map { $0.rows * $0.columns }.max() ?? 0
    }
}
