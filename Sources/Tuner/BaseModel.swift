import Foundation
import LLM
import Tensor

// The frozen base model the tuner differentiates: a Llama, Qwen2 or Gemma 3 GGUF dequantized to float32.
// Dimension letters as in Ops.swift; QW = NH·HS.

/// How the frozen base weights are held while training.
public enum BasePrecision: String, Codable, Sendable, CaseIterable {
    /// Every weight dequantized to float32 once at load (fastest).
    case float32
    /// The block projections stay quantized (memory-mapped from the GGUF) and are dequantized one
    /// matrix at a time into a scratch buffer when used (the QLoRA idea: less memory, more work).
    case quantized
}

/// One frozen projection `(OUT, IN)`: float32 in memory, or the GGUF tensor dequantized on use.
public struct FrozenWeight: @unchecked Sendable {
    // @unchecked: read-only after load; the GGUF mapping outlives the model.
    /// OUT and IN.
    public let rows: Int, columns: Int
    private let dense: UnsafeMutablePointer<Float>?
    private let tensor: GGUFTensor?

    init(dense: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        self.dense = dense; tensor = nil; self.rows = rows; self.columns = columns
    }

    init(tensor: GGUFTensor) {
        dense = nil; self.tensor = tensor; rows = tensor.info.rowCount; columns = tensor.info.rowLength
    }

    /// Whether the weight is dequantized on every use.
    public var isQuantized: Bool { tensor != nil }

    /// The float32 weight: the stored one, or the tensor dequantized into `scratch` (at least
    /// OUT·IN floats) on both cores.
    public func floats(scratch: UnsafeMutablePointer<Float>?) -> UnsafePointer<Float> {
        if let dense { return UnsafePointer(dense) }
        guard let tensor, let scratch else { preconditionFailure("a quantized weight needs a scratch buffer") }
        let box = UncheckedSendable(scratch), cols = columns
        Parallel.forEach(0..<rows, chunks: 2 * Parallel.coreCount) { part in
            // The type was checked at load (`canDequantize`), so this cannot throw.
            try! tensor.dequantizeRows(part, into: UnsafeMutableBufferPointer(start: box.value + part.lowerBound * cols,
                                                                               count: part.count * cols))
        }
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

    /// Loads `file`: embeddings, head, norms and biases as float32; block projections as `precision` says.
    /// - Throws: `TunerError.invalidModel` for a configuration the tuner cannot train;
    ///   `ModelError` naming a missing or mis-shaped tensor or a type that cannot be dequantized;
    ///   `GGUFError` from dequantization.
    public init(file: GGUFFile, precision: BasePrecision = .float32) throws {
        let cfg = try TrainModelConfig(file: file)
        config = cfg
        path = file.path
        self.precision = precision
        let c = cfg.width, kv = cfg.kvWidth, f = cfg.ffn, v = cfg.vocab, qw = cfg.queryWidth, hs = cfg.headSize
        let tied = cfg.tiedEmbeddings
        let norms = 2 * c + (cfg.queryKeyNorm ? 2 * hs : 0) + (cfg.postNorms ? 2 * c : 0)
        let biases = cfg.attentionBias ? qw + 2 * kv : 0
        let perBlock = norms + biases + (precision == .float32 ? 2 * qw * c + 2 * kv * c + 3 * f * c : 0)
        let total = v * c * (tied ? 1 : 2) + c + cfg.layers * perBlock
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
        storage = buffer
        var cursor = buffer.baseAddress!
        // ggml dims are reversed: a (out, in) weight has dims [in, out].
        func find(_ name: String, _ shape: [Int]) throws -> GGUFTensor { try file.weight(name, dims: shape.reversed()) }
        func load(_ name: String, _ shape: [Int]) throws -> UnsafeMutablePointer<Float> {
            let tensor = try find(name, shape)
            let count = shape.reduce(1, *), out = cursor
            try Self.dequantizeAll(tensor, into: out)
            cursor += count
            return out
        }
        func linear(_ name: String, _ shape: [Int]) throws -> FrozenWeight {
            precision == .float32 ? FrozenWeight(dense: try load(name, shape), rows: shape[0], columns: shape[1])
                : FrozenWeight(tensor: try find(name, shape))
        }
        do {
            wte = try load("token_embd.weight", [v, c])
            head = tied ? wte : try load("output.weight", [v, c])
            outNorm = try load("output_norm.weight", [c])
            blocks = try (0..<cfg.layers).map { l in
                let p = "blk.\(l)."
                return BlockWeights(
                    attnNorm: try load(p + "attn_norm.weight", [c]), ffnNorm: try load(p + "ffn_norm.weight", [c]),
                    qNorm: cfg.queryKeyNorm ? try load(p + "attn_q_norm.weight", [hs]) : nil,
                    kNorm: cfg.queryKeyNorm ? try load(p + "attn_k_norm.weight", [hs]) : nil,
                    postAttnNorm: cfg.postNorms ? try load(p + "post_attention_norm.weight", [c]) : nil,
                    postFFNNorm: cfg.postNorms ? try load(p + "post_ffw_norm.weight", [c]) : nil,
                    wq: try linear(p + "attn_q.weight", [qw, c]), wk: try linear(p + "attn_k.weight", [kv, c]),
                    wv: try linear(p + "attn_v.weight", [kv, c]), wo: try linear(p + "attn_output.weight", [c, qw]),
                    wgate: try linear(p + "ffn_gate.weight", [f, c]), wup: try linear(p + "ffn_up.weight", [f, c]),
                    wdown: try linear(p + "ffn_down.weight", [c, f]),
                    bq: cfg.attentionBias ? try load(p + "attn_q.bias", [qw]) : nil,
                    bk: cfg.attentionBias ? try load(p + "attn_k.bias", [kv]) : nil,
                    bv: cfg.attentionBias ? try load(p + "attn_v.bias", [kv]) : nil)
            }
        } catch {
            buffer.deallocate()
            throw error
        }
        precondition(cursor == buffer.baseAddress! + total, "base weight layout mismatch")
    }

    /// Dequantizes every row of `tensor` into `out` `(rows, columns)`, the rows split over the cores
    /// (a 1.5B-parameter base is ≈ 6 GB of floats to write).
    /// - Throws: the first piece's `GGUFError`, if any.
    private static func dequantizeAll(_ tensor: GGUFTensor, into out: UnsafeMutablePointer<Float>) throws {
        let rows = tensor.info.rowCount, cols = tensor.info.rowLength
        let pieces = min(rows, rows * cols >= 1 << 16 ? 2 * Parallel.coreCount : 1)
        guard pieces > 1 else {
            try tensor.dequantizeRows(0..<rows, into: UnsafeMutableBufferPointer(start: out, count: rows * cols))
            return
        }
        let errors = UnsafeMutableBufferPointer<Error?>.allocate(capacity: pieces)   // (pieces) one slot per task
        errors.initialize(repeating: nil)
        defer { errors.deinitialize(); errors.deallocate() }
        let box = UncheckedSendable((tensor, out, errors))
        Parallel.forEachIndex(0..<pieces) { piece in
            let (tensor, out, errors) = box.value
            let part = (piece * rows / pieces)..<((piece + 1) * rows / pieces)
            do {
                try tensor.dequantizeRows(part, into: UnsafeMutableBufferPointer(start: out + part.lowerBound * cols, count: part.count * cols))
            } catch { errors[piece] = error }
        }
        if let error = errors.lazy.compactMap({ $0 }).first { throw error }
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
