import Foundation
import LLM
import Tensor

// The frozen base model the tuner differentiates: a Llama-family GGUF dequantized to float32.
// Dimension letters as in Ops.swift.

/// The hyper-parameters the training forward needs, read from GGUF metadata.
public struct TrainModelConfig: Sendable, Equatable, Codable {
    /// C, L, NH, NKV, HS, F, V.
    public var width: Int, layers: Int, heads: Int, kvHeads: Int, headSize: Int, ffn: Int, vocab: Int
    /// RMSNorm epsilon and RoPE base.
    public var normEpsilon: Float, ropeBase: Float
    /// The longest sequence the model was trained for.
    public var contextLength: Int

    /// KV = NKV·HS, the key/value width.
    public var kvWidth: Int { kvHeads * headSize }

    /// Reads `llama.*` metadata of `file`.
    /// - Throws: `TunerError.invalidModel` for another architecture or bad values; `GGUFError` for missing keys.
    public init(file: GGUFFile) throws {
        let m = file.metadata
        let arch = try m.string("general.architecture")
        guard arch == "llama" else {
            throw TunerError.invalidModel(path: file.path, detail: "architecture '\(arch)' is not supported by the tuner (llama only)")
        }
        width = try m.int("llama.embedding_length")
        layers = try m.int("llama.block_count")
        heads = try m.int("llama.attention.head_count")
        kvHeads = m.contains("llama.attention.head_count_kv") ? try m.int("llama.attention.head_count_kv") : heads
        ffn = try m.int("llama.feed_forward_length")
        headSize = width / max(heads, 1)
        vocab = try m.strings("tokenizer.ggml.tokens").count
        normEpsilon = try m.float("llama.attention.layer_norm_rms_epsilon")
        ropeBase = m.contains("llama.rope.freq_base") ? try m.float("llama.rope.freq_base") : 10_000
        contextLength = try m.int("llama.context_length")
        guard width > 0, layers > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, headSize * heads == width,
              headSize % 2 == 0, ffn > 0, vocab > 0 else {
            throw TunerError.invalidModel(path: file.path, detail: "inconsistent llama dimensions C=\(width) L=\(layers) NH=\(heads) NKV=\(kvHeads) F=\(ffn) V=\(vocab)")
        }
    }
}

/// The frozen float32 weights of one transformer block (views into ``BaseModel``'s allocation).
public struct BlockWeights {
    /// attnNorm `(C)`, ffnNorm `(C)`.
    public let attnNorm: UnsafeMutablePointer<Float>, ffnNorm: UnsafeMutablePointer<Float>
    /// wq `(C, C)`, wk `(KV, C)`, wv `(KV, C)`, wo `(C, C)`, all `(out, in)`; q/k rows in GGUF's permuted order.
    public let wq: UnsafeMutablePointer<Float>, wk: UnsafeMutablePointer<Float>
    public let wv: UnsafeMutablePointer<Float>, wo: UnsafeMutablePointer<Float>
    /// wgate `(F, C)`, wup `(F, C)`, wdown `(C, F)`.
    public let wgate: UnsafeMutablePointer<Float>, wup: UnsafeMutablePointer<Float>, wdown: UnsafeMutablePointer<Float>

    /// The frozen weight of a LoRA target.
    public func weight(_ target: LoRATarget) -> UnsafeMutablePointer<Float> {
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
}

/// A Llama GGUF's weights dequantized to float32, in one allocation with named views (llm.c style).
public final class BaseModel: @unchecked Sendable {
    /// The configuration.
    public let config: TrainModelConfig
    /// The file the weights came from.
    public let path: String
    /// Token embedding `(V, C)`, also the output head when the model ties them.
    public let wte: UnsafeMutablePointer<Float>
    /// Output head `(V, C)` (equal to `wte` when tied).
    public let head: UnsafeMutablePointer<Float>
    /// Final RMSNorm weight `(C)`.
    public let outNorm: UnsafeMutablePointer<Float>
    /// Per-layer weights.
    public let blocks: [BlockWeights]
    private let storage: UnsafeMutableBufferPointer<Float>

    /// Loads and dequantizes every weight of `file`.
    /// - Throws: `TunerError.invalidModel` naming a missing or mis-shaped tensor; `GGUFError` from dequantization.
    public init(file: GGUFFile) throws {
        let cfg = try TrainModelConfig(file: file)
        config = cfg
        path = file.path
        let c = cfg.width, kv = cfg.kvWidth, f = cfg.ffn, v = cfg.vocab
        let tied = !file.contains(tensor: "output.weight")
        let perBlock = 2 * c + 2 * c * c + 2 * kv * c + 3 * f * c
        let total = v * c * (tied ? 1 : 2) + c + cfg.layers * perBlock
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
        storage = buffer
        var cursor = buffer.baseAddress!
        func load(_ name: String, _ shape: [Int]) throws -> UnsafeMutablePointer<Float> {
            guard file.contains(tensor: name) else {
                throw TunerError.invalidModel(path: file.path, detail: "missing tensor \(name)")
            }
            let tensor = try file.tensor(named: name)
            // ggml dims are reversed: a (out, in) weight has dims [in, out].
            guard tensor.info.dims == Array(shape.reversed()) else {
                throw TunerError.invalidModel(path: file.path, detail: "tensor \(name) has dims \(tensor.info.dims), expected \(Array(shape.reversed()))")
            }
            let count = shape.reduce(1, *), out = cursor
            try tensor.dequantizeRows(0..<tensor.info.rowCount, into: UnsafeMutableBufferPointer(start: out, count: count))
            cursor += count
            return out
        }
        do {
            wte = try load("token_embd.weight", [v, c])
            head = tied ? wte : try load("output.weight", [v, c])
            outNorm = try load("output_norm.weight", [c])
            blocks = try (0..<cfg.layers).map { l in
                let p = "blk.\(l)."
                return BlockWeights(
                    attnNorm: try load(p + "attn_norm.weight", [c]), ffnNorm: try load(p + "ffn_norm.weight", [c]),
                    wq: try load(p + "attn_q.weight", [c, c]), wk: try load(p + "attn_k.weight", [kv, c]),
                    wv: try load(p + "attn_v.weight", [kv, c]), wo: try load(p + "attn_output.weight", [c, c]),
                    wgate: try load(p + "ffn_gate.weight", [f, c]), wup: try load(p + "ffn_up.weight", [f, c]),
                    wdown: try load(p + "ffn_down.weight", [c, f]))
            }
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    /// Opens `path` and loads it.
    public convenience init(path: String) throws {
        try self.init(file: try GGUFFile(path: path))
    }

    deinit { storage.deallocate() }

    /// Bytes held by the float32 weights.
    public var byteCount: Int { storage.count * MemoryLayout<Float>.stride }
}
