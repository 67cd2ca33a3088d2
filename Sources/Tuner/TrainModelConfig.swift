import Foundation
import LLM

// The hyper-parameters of the model the tuner differentiates: the runtime's `ModelConfig` (the one
// place reading GGUF metadata, for `llama`, `qwen2` and `gemma3`), named in the tuner's dimension
// letters, plus what the runtime's `ModelWeights` found in the file (biases, a separate head).
// Dimension letters as in Ops.swift; QW = NH·HS (the query width, C for Llama, not for Gemma 3).

/// The hyper-parameters the training forward needs. Every field of the runtime's ``ModelConfig``
/// reads through it (`c.normEpsilon`, `c.queryKeyNorm`, `c.postNorms`, `c.ropeStyle`, …).
@dynamicMemberLookup
public struct TrainModelConfig: Sendable, Equatable {
    /// Which channels of a head RoPE rotates together (the runtime's).
    public typealias RoPEStyle = ModelConfig.RoPEStyle
    /// The gate activation of the gated feed-forward (the runtime's).
    public typealias Activation = ModelConfig.Activation

    /// The hyper-parameters as the runtime reads them.
    public let runtime: ModelConfig
    /// The q, k and v projections add a frozen float32 bias `(QW)`, `(KV)`, `(KV)`: the file has
    /// them (Qwen2; a Llama file may too), as the runtime's ``ModelWeights`` reads it.
    public let attentionBias: Bool
    /// The output head is the token embedding `(V, C)`; `false` when the file has `output.weight`.
    public let tiedEmbeddings: Bool

    /// A field of the runtime's configuration, under its own name.
    public subscript<T>(dynamicMember field: KeyPath<ModelConfig, T>) -> T { runtime[keyPath: field] }
    /// C, L, NH, NKV, F, V.
    public var width: Int { runtime.embeddingLength }
    public var layers: Int { runtime.layerCount }
    public var heads: Int { runtime.headCount }
    public var kvHeads: Int { runtime.kvHeadCount }
    public var ffn: Int { runtime.feedForwardLength }
    public var vocab: Int { runtime.vocabularySize }
    /// RoPE base of each layer `(L)` (Gemma 3: 10,000 on local layers, `rope.freq_base` on global ones).
    public var ropeBases: [Float] { runtime.ropeBase }
    /// The sliding attention window of each layer `(L)`; `nil`: global causal attention.
    public var slidingWindows: [Int?] { runtime.slidingWindow }

    /// Architectures the tuner trains.
    public static let supportedArchitectures = ["llama", "qwen2", "gemma3"]

    /// The configuration of `file` as the runtime reads it, with the runtime's weights found in it.
    /// - Throws: `TunerError.invalidModel` for another architecture or bad values; `GGUFError` for
    ///   missing keys; `ModelError` naming a missing or mis-shaped tensor.
    public init(file: GGUFFile) throws {
        self = try Self.read(file).config
    }

    /// - Parameters: runtime: the hyper-parameters; weights: the runtime's weights of the same file.
    public init(_ runtime: ModelConfig, weights: ModelWeights) {
        self.runtime = runtime
        attentionBias = weights.layers.first?.query.bias != nil
        tiedEmbeddings = weights.tiedEmbeddings
    }

    /// The configuration and the runtime's (still quantized, memory-mapped) weights of `file`.
    /// - Throws: as ``init(file:)``.
    static func read(_ file: GGUFFile) throws -> (config: TrainModelConfig, weights: ModelWeights) {
        let arch = try file.metadata.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw TunerError.invalidModel(path: file.path, detail: "architecture '\(arch)' is not supported by the tuner (\(Self.supportedArchitectures.joined(separator: ", ")))")
        }
        let runtime: ModelConfig
        do { runtime = try ModelConfig.read(file) } catch let error as ModelError {
            throw TunerError.invalidModel(path: file.path, detail: error.localizedDescription)
        }
        // Llama's and Qwen2's q and o are (C, C): their head size is C / NH.
        guard arch == "gemma3" || runtime.queryWidth == runtime.embeddingLength else {
            throw TunerError.invalidModel(path: file.path, detail: "\(arch) head size \(runtime.headSize) × \(runtime.headCount) heads is not the width \(runtime.embeddingLength)")
        }
        let weights = try ModelWeights(file: file, config: runtime)
        return (TrainModelConfig(runtime, weights: weights), weights)
    }
}
