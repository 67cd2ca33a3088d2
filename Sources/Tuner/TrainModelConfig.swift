import Foundation
import LLM

// The hyper-parameters of the model the tuner differentiates, read from GGUF metadata. Three
// architectures: Llama (`llama`), Qwen2 (`qwen2`: the Llama block with q/k/v biases, rotate-half
// RoPE on un-permuted q/k rows and, in the files we use, an untied output head) and Gemma 3
// (`gemma3`). The semantics mirror the runtime's `ModelConfig(file:)` / `LlamaModel` and
// `ModelConfig(gemma3:)` / `Gemma3Model` exactly (which match the golden logits).
// Dimension letters as in Ops.swift; QW = NH·HS (the query width, C for Llama, not for Gemma 3).

/// The hyper-parameters the training forward needs.
public struct TrainModelConfig: Sendable, Equatable, Codable {
    /// Which channels of a head RoPE rotates together.
    public enum RoPEStyle: String, Sendable, Codable {
        /// `(x[2i], x[2i+1])`: GGUF's permuted Llama q/k rows.
        case adjacentPairs
        /// `(x[i], x[i + HS/2])`: rotate-half (NeoX), Qwen2 and Gemma 3 (their q/k rows are not permuted).
        case halves
    }

    /// The gate activation of the gated feed-forward.
    public enum Activation: String, Sendable, Codable {
        /// `silu(g)·u` (SwiGLU, Llama).
        case silu
        /// `gelu_tanh(g)·u` (GeGLU, Gemma).
        case geluTanh
    }

    /// `general.architecture`: `llama`, `qwen2` or `gemma3`.
    public var architecture: String
    /// C, L, NH, NKV, HS, F, V.
    public var width: Int, layers: Int, heads: Int, kvHeads: Int, headSize: Int, ffn: Int, vocab: Int
    /// RMSNorm epsilon.
    public var normEpsilon: Float
    /// RoPE base of each layer `(L)` (Gemma 3: 10,000 on local layers, `rope.freq_base` on global ones).
    public var ropeBases: [Float]
    /// The sliding attention window of each layer `(L)`; `nil`: global causal attention.
    public var slidingWindows: [Int?]
    /// How RoPE pairs channels.
    public var ropeStyle: RoPEStyle
    /// The feed-forward gate's activation.
    public var activation: Activation
    /// Token embeddings are multiplied by this (Gemma 3: sqrt(C); Llama: 1).
    public var embeddingScale: Float
    /// Scores are `q·k · attentionScale` (1/sqrt(HS) for both families).
    public var attentionScale: Float
    /// q and k are RMS-normalised per head (weights `(HS)`) before RoPE (Gemma 3).
    public var queryKeyNorm: Bool
    /// An RMSNorm on the attention output and on the feed-forward output before each is added to
    /// the residual stream (Gemma 3's post-norms).
    public var postNorms: Bool
    /// The q, k and v projections add a frozen float32 bias `(QW)`, `(KV)`, `(KV)` (Qwen2; a Llama
    /// file that stores `blk.N.attn_q.bias` too, as the runtime reads it).
    public var attentionBias: Bool
    /// The output head is the token embedding `(V, C)`; `false` when the file has `output.weight`.
    public var tiedEmbeddings: Bool
    /// The longest sequence the model was trained for.
    public var contextLength: Int

    /// KV = NKV·HS, the key/value width.
    public var kvWidth: Int { kvHeads * headSize }
    /// QW = NH·HS, the query width (the input width of the o projection).
    public var queryWidth: Int { heads * headSize }
    /// Architectures the tuner trains.
    public static let supportedArchitectures = ["llama", "qwen2", "gemma3"]

    /// Reads the `llama.*`, `qwen2.*` or `gemma3.*` metadata of `file`, and which optional tensors
    /// (q/k/v biases, `output.weight`) it has.
    /// - Throws: `TunerError.invalidModel` for another architecture or bad values; `GGUFError` for missing keys.
    public init(file: GGUFFile) throws {
        let m = file.metadata
        let arch = try m.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw TunerError.invalidModel(path: file.path, detail: "architecture '\(arch)' is not supported by the tuner (\(Self.supportedArchitectures.joined(separator: ", ")))")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let value, !m.contains("\(arch).\(key)") { return value }
            return try m.int("\(arch).\(key)")
        }
        architecture = arch
        width = try int("embedding_length")
        layers = try int("block_count")
        heads = try int("attention.head_count")
        kvHeads = try int("attention.head_count_kv", default: heads)
        ffn = try int("feed_forward_length")
        headSize = try int("attention.key_length", default: width / max(heads, 1))
        vocab = try m.strings("tokenizer.ggml.tokens").count
        normEpsilon = try m.float("\(arch).attention.layer_norm_rms_epsilon")
        let base: Float = m.contains("\(arch).rope.freq_base") ? try m.float("\(arch).rope.freq_base")
            : (arch == "gemma3" ? 1_000_000 : 10_000)
        attentionScale = 1 / Float(max(headSize, 1)).squareRoot()
        tiedEmbeddings = !file.contains(tensor: "output.weight")
        // Qwen2 always has them (a missing one is reported by `BaseModel`); the runtime uses a
        // Llama file's biases when present, so the tuner does too.
        attentionBias = arch == "qwen2" || (arch == "llama" && file.contains(tensor: "blk.0.attn_q.bias"))
        if arch == "gemma3" {
            contextLength = try int("context_length", default: 32_768)
            let window = try int("attention.sliding_window", default: 512)
            guard window > 0 else {
                throw TunerError.invalidModel(path: file.path, detail: "gemma3.attention.sliding_window is \(window), expected > 0")
            }
            // Layer l is global when (l + 1) % 6 == 0, as llama.cpp and the runtime have it.
            let global = (0..<max(layers, 0)).map { ($0 + 1) % 6 == 0 }
            ropeBases = global.map { $0 ? base : 10_000 }
            slidingWindows = global.map { $0 ? nil : window }
            ropeStyle = .halves
            activation = .geluTanh
            embeddingScale = Float(width).squareRoot()
            queryKeyNorm = true
            postNorms = true
        } else {
            contextLength = try int("context_length")
            ropeBases = [Float](repeating: base, count: max(layers, 0))
            slidingWindows = [Int?](repeating: nil, count: max(layers, 0))
            // llama.cpp's converter permutes only Llama's q/k rows for adjacent-pair RoPE.
            ropeStyle = arch == "llama" ? .adjacentPairs : .halves
            activation = .silu
            embeddingScale = 1
            queryKeyNorm = false
            postNorms = false
        }
        // Llama's and Qwen2's q and o are (C, C): their head size is C / NH.
        let llamaShaped = arch == "gemma3" || headSize * heads == width
        guard width > 0, layers > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, headSize > 0, headSize % 2 == 0,
              llamaShaped, ffn > 0, vocab > 0, base > 0, normEpsilon > 0 else {
            throw TunerError.invalidModel(path: file.path, detail: "inconsistent \(arch) dimensions C=\(width) L=\(layers) NH=\(heads) NKV=\(kvHeads) HS=\(headSize) F=\(ffn) V=\(vocab) rope base \(base) eps \(normEpsilon)")
        }
    }
}
