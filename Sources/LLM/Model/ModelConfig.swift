/// The hyper-parameters of a decoder-only transformer, read from GGUF metadata
/// (`<arch>.embedding_length`, `<arch>.block_count`, ...).
///
/// Dimension letters used across the model code: C channels (`embeddingLength`), L layers,
/// NH query heads, NKV key/value heads, HS head size, FF feed-forward width, V vocabulary.
/// The knobs below the Llama ones exist so a second family (Gemma 3) can reuse the forward pass;
/// `ModelConfig(file:)` accepts only the architectures that are implemented.
public struct ModelConfig: Sendable, Equatable {
    /// How the RMSNorm weight is applied.
    public enum NormStyle: Sendable, Equatable {
        /// `x / rms * w` (Llama).
        case plain
        /// `x / rms * (1 + w)` (Gemma).
        case onePlusWeight
    }
    /// The gate activation of the gated feed-forward.
    public enum Activation: Sendable, Equatable {
        case silu
        case geluTanh
    }
    /// Which pairs of a head's channels RoPE rotates together.
    public enum RoPEStyle: Sendable, Equatable {
        /// `(x[2i], x[2i+1])`: llama.cpp's "normal" RoPE, matching GGUF's permuted Llama q/k rows.
        case adjacentPairs
        /// `(x[i], x[i + HS/2])`: rotate-half ("NeoX"), used by Qwen2 and Gemma.
        case halves
    }

    public var architecture: String
    /// C.
    public var embeddingLength: Int
    /// L.
    public var layerCount: Int
    /// FF.
    public var feedForwardLength: Int
    /// NH.
    public var headCount: Int
    /// NKV (grouped-query attention when smaller than NH).
    public var kvHeadCount: Int
    /// HS.
    public var headSize: Int
    /// V.
    public var vocabularySize: Int
    /// The longest sequence the model was trained for.
    public var contextLength: Int
    public var normEpsilon: Float
    /// RoPE base per layer (Gemma's local and global layers differ).
    public var ropeBase: [Float]
    public var ropeStyle: RoPEStyle
    public var normStyle: NormStyle
    public var activation: Activation
    /// Embeddings are multiplied by this (Gemma: sqrt(C)); 1 for Llama.
    public var embeddingScale: Float
    /// Sliding-window size per layer (`nil`: global attention).
    public var slidingWindow: [Int?]
    /// Whether q and k are RMS-normalised per head before RoPE (Gemma 3).
    public var queryKeyNorm: Bool
    /// Query scaling before the softmax; `1/sqrt(HS)` unless the file says otherwise.
    public var attentionScale: Float
    /// An RMSNorm on the attention output and on the feed-forward output before each joins the
    /// residual stream (Gemma 3's post-norms).
    public var postNorms: Bool

    /// The configuration of any architecture the runtime implements (`llama`, `qwen2`, `gemma3`):
    /// the one place where GGUF metadata becomes hyper-parameters, for the runtime and the tuner.
    /// - Throws: `ModelError.unsupportedArchitecture`, `.invalidMetadata`, or `GGUFError`.
    public static func read(_ file: GGUFFile) throws -> ModelConfig {
        try file.metadata.string("general.architecture") == "gemma3" ? ModelConfig(gemma3: file) : ModelConfig(file: file)
    }

    /// `block_count`, refused when the file has fewer tensors than layers: per-layer arrays are
    /// sized from it before any layer's tensors are looked up, so a 1 KB file claiming 10^12
    /// layers must fail here rather than allocate.
    static func checkedLayerCount(_ count: Int, file: GGUFFile) throws -> Int {
        guard count <= file.tensors.count else {
            throw ModelError.invalidMetadata(path: file.path, key: "\(file.architecture ?? "").block_count", value: "\(count)",
                                             expected: "at most the file's \(file.tensors.count) tensors (one or more per layer)")
        }
        return count
    }

    /// Architectures whose forward pass is implemented.
    public static let supportedArchitectures = ["llama", "qwen2"]

    /// Reads the configuration of `file`.
    /// - Throws: `ModelError.unsupportedArchitecture`, `.invalidMetadata`, or `GGUFError` for a
    ///   missing or mistyped key.
    public init(file: GGUFFile) throws {
        let path = file.path
        let metadata = file.metadata
        let arch = try metadata.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw ModelError.unsupportedArchitecture(path: path, architecture: arch,
                                                     supported: Self.supportedArchitectures)
        }
        func int(_ key: String) throws -> Int {
            let value = try metadata.int("\(arch).\(key)")
            guard value > 0 else {
                throw ModelError.invalidMetadata(path: path, key: "\(arch).\(key)", value: "\(value)", expected: "> 0")
            }
            return value
        }
        architecture = arch
        embeddingLength = try int("embedding_length")
        layerCount = try Self.checkedLayerCount(try int("block_count"), file: file)
        feedForwardLength = try int("feed_forward_length")
        headCount = try int("attention.head_count")
        kvHeadCount = metadata.contains("\(arch).attention.head_count_kv") ? try int("attention.head_count_kv") : headCount
        contextLength = try int("context_length")
        normEpsilon = try metadata.float("\(arch).attention.layer_norm_rms_epsilon")
        let base = metadata.contains("\(arch).rope.freq_base") ? try metadata.float("\(arch).rope.freq_base") : 10_000
        headSize = metadata.contains("\(arch).attention.key_length")
            ? try int("attention.key_length") : embeddingLength / headCount
        if metadata.contains("\(arch).vocab_size") {
            vocabularySize = try int("vocab_size")
        } else {
            vocabularySize = try metadata.strings("tokenizer.ggml.tokens").count
        }
        guard headCount % kvHeadCount == 0 else {
            throw ModelError.invalidMetadata(path: path, key: "\(arch).attention.head_count_kv", value: "\(kvHeadCount)",
                                             expected: "a divisor of head_count \(headCount)")
        }
        guard headSize % 2 == 0, headSize % 8 == 0 else {
            throw ModelError.invalidMetadata(path: path, key: "\(arch).attention.key_length", value: "\(headSize)",
                                             expected: "a multiple of 8")
        }
        guard base > 0, normEpsilon > 0 else {
            throw ModelError.invalidMetadata(path: path, key: "\(arch).rope.freq_base", value: "\(base)", expected: "> 0")
        }
        ropeBase = [Float](repeating: base, count: layerCount)
        ropeStyle = arch == "llama" ? .adjacentPairs : .halves
        normStyle = .plain
        activation = .silu
        embeddingScale = 1
        slidingWindow = [Int?](repeating: nil, count: layerCount)
        queryKeyNorm = false
        attentionScale = 1 / Float(headSize).squareRoot()
        postNorms = false
    }

    /// Query width NH*HS.
    public var queryWidth: Int { headCount * headSize }
    /// Key/value width NKV*HS.
    public var kvWidth: Int { kvHeadCount * headSize }
}
