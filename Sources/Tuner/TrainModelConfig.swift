import Foundation
import LLM

// The hyper-parameters of the model the tuner differentiates: the runtime's `ModelConfig` (the one
// place reading GGUF metadata, for `llama`, `qwen2` and `gemma3`) in the tuner's dimension
// letters, plus what the training forward needs to know about the file's tensors.
// Dimension letters as in Ops.swift; QW = NH·HS (the query width, C for Llama, not for Gemma 3).

/// The hyper-parameters the training forward needs.
public struct TrainModelConfig: Sendable, Equatable {
    /// Which channels of a head RoPE rotates together (the runtime's).
    public typealias RoPEStyle = ModelConfig.RoPEStyle
    /// The gate activation of the gated feed-forward (the runtime's).
    public typealias Activation = ModelConfig.Activation

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

    /// The configuration of `file` as the runtime reads it (`ModelConfig.read`), and which optional
    /// tensors (q/k/v biases, `output.weight`) the file has.
    /// - Throws: `TunerError.invalidModel` for another architecture or bad values; `GGUFError` for missing keys.
    public init(file: GGUFFile) throws {
        let arch = try file.metadata.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw TunerError.invalidModel(path: file.path, detail: "architecture '\(arch)' is not supported by the tuner (\(Self.supportedArchitectures.joined(separator: ", ")))")
        }
        let runtime: ModelConfig
        do { runtime = try ModelConfig.read(file) } catch let error as ModelError {
            throw TunerError.invalidModel(path: file.path, detail: error.localizedDescription)
        }
        // Qwen2 always has them (a missing one is reported by `BaseModel`); the runtime uses a
        // Llama file's biases when present, so the tuner does too.
        let biased = arch == "qwen2" || (arch == "llama" && file.contains(tensor: "blk.0.attn_q.bias"))
        self.init(runtime, tiedEmbeddings: !file.contains(tensor: "output.weight"), attentionBias: biased)
        // Llama's and Qwen2's q and o are (C, C): their head size is C / NH.
        guard arch == "gemma3" || headSize * heads == width else {
            throw TunerError.invalidModel(path: file.path, detail: "\(arch) head size \(headSize) × \(heads) heads is not the width \(width)")
        }
    }

    /// The runtime's configuration in the tuner's terms.
    /// - Parameters:
    ///   - runtime: the hyper-parameters as the runtime reads them.
    ///   - tiedEmbeddings, attentionBias: see the properties.
    public init(_ runtime: ModelConfig, tiedEmbeddings: Bool, attentionBias: Bool) {
        architecture = runtime.architecture
        width = runtime.embeddingLength
        layers = runtime.layerCount
        heads = runtime.headCount
        kvHeads = runtime.kvHeadCount
        headSize = runtime.headSize
        ffn = runtime.feedForwardLength
        vocab = runtime.vocabularySize
        normEpsilon = runtime.normEpsilon
        ropeBases = runtime.ropeBase
        slidingWindows = runtime.slidingWindow
        ropeStyle = runtime.ropeStyle
        activation = runtime.activation
        embeddingScale = runtime.embeddingScale
        attentionScale = runtime.attentionScale
        queryKeyNorm = runtime.queryKeyNorm
        postNorms = runtime.postNorms
        self.attentionBias = attentionBias
        self.tiedEmbeddings = tiedEmbeddings
        contextLength = runtime.contextLength
    }
}
