import Tensor

/// A decoder-only language model with a KV cache: what `TextGenerator` needs to run one or many
/// sequences, whatever the architecture (`LlamaModel` for llama/qwen2, `Gemma3Model` for gemma3,
/// peers that share the step types below).
///
/// A step is a list of `StepSegment`s (new tokens of distinct sequences, each with its own cache)
/// whose rows run through the model together.
public protocol CausalLanguageModel: AnyObject, Sendable {
    /// The GGUF file the weights come from.
    var file: GGUFFile { get }
    /// The hyper-parameters (vocabulary size V, context length, cache width).
    var config: ModelConfig { get }
    /// The LoRA adapter applied at load time, if any: its file, form and how it is applied.
    var adapter: (path: String, format: LoRAAdapter.Format, mode: AdapterMode)? { get }
    /// A cache for one sequence of up to `capacity` positions (`nil`: the context length).
    func makeCache(capacity: Int?, precision: KVCache.Precision) -> KVCache
    /// Runs the new tokens of each segment, appending their keys and values to its cache.
    /// - Returns: logits `(rows, V)` flattened: one row per segment for `.last`, ΣT rows for `.all`.
    /// - Throws: `ModelError.emptyPrompt`, `.tokenOutOfRange`, `.contextOverflow` (caches unchanged).
    func forward(_ segments: [StepSegment], logits rows: LogitRows) throws -> [Float]
}

extension CausalLanguageModel {
    /// A cache of f16 elements for one sequence of up to `capacity` positions.
    public func makeCache(capacity: Int? = nil) -> KVCache {
        makeCache(capacity: capacity, precision: .f16)
    }

    /// Logits `(B, V)` of the last row of each segment.
    public func forward(_ segments: [StepSegment]) throws -> [Float] {
        try forward(segments, logits: .last)
    }
}

extension LlamaModel: CausalLanguageModel {
    /// `forward(_:logits:kernels:)` with `options.kernels`.
    public func forward(_ segments: [Segment], logits rows: LogitRows) throws -> [Float] {
        try forward(segments, logits: rows, kernels: nil)
    }
}

extension Gemma3Model: CausalLanguageModel {}

/// Architectures `loadLanguageModel` runs.
public let supportedLanguageModelArchitectures = ModelConfig.supportedArchitectures + ["gemma3"]

/// Loads the model in `file` with the implementation its `general.architecture` names:
/// `llama`/`qwen2` as `LlamaModel`, `gemma3` as `Gemma3Model`.
/// - Parameters:
///   - options: kernel choice (and, for Llama, dense weight copies); `adapterMode` says whether
///     an adapter runs in the forward pass or is merged into float32 weights at load time.
///   - adapter: a LoRA adapter (`LoRAAdapter(path:)`) to apply, checked against the model.
/// - Throws: `ModelError.unsupportedArchitecture` naming the file, the architecture and the
///   supported ones; the model's own load errors; `GGUFError` for missing metadata;
///   `AdapterError` for an adapter of another base model or with tensors that fit no weight.
public func loadLanguageModel(file: GGUFFile, options: ModelOptions = .init(),
                              adapter: LoRAAdapter? = nil) throws -> any CausalLanguageModel {
    let architecture = try file.metadata.string("general.architecture")
    switch architecture {
    case "gemma3":
        return try Gemma3Model(file: file, options: options, adapter: adapter)
    case _ where ModelConfig.supportedArchitectures.contains(architecture):
        return try LlamaModel(file: file, options: options, adapter: adapter)
    default:
        throw ModelError.unsupportedArchitecture(path: file.path, architecture: architecture,
                                                 supported: supportedLanguageModelArchitectures)
    }
}

// MARK: - Step types

/// How a model computes its linear layers and applies an adapter (every architecture;
/// `LlamaModel.Options` is the same type).
public struct ModelOptions: Sendable {
    public enum Kernels: Sendable {
        /// Quantized kernels (integer `QuantIntDot` for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, float
        /// `QuantDot` otherwise) for steps of at most `quantizedRowLimit` rows, `sgemm` above.
        case fast
        /// Always `sgemm`/float32 on dequantized weights: the reference the tests compare to.
        case reference
    }
    public var kernels: Kernels
    /// Keep a float32 copy of every weight (4 bytes per weight: 540 MB for SmolLM2) so steps
    /// of more than 4 rows (batched decode, prompts) are plain `sgemm`, the fastest path.
    /// Without it, steps of up to `quantizedRowLimit` rows use the integer kernels (about
    /// 1.1x the CPU time of `sgemm` for 32 rows with AVX2) and longer ones dequantize each weight
    /// into scratch first (a few percent of a 512-token prefill).
    public var denseWeights: Bool
    /// Without `denseWeights`: steps with at most this many rows use the quantized kernels
    /// (`.fast` only); types without an integer kernel only up to 4 rows.
    public var quantizedRowLimit: Int

    /// Steps with at least this many rows (and at most `quantizedRowLimit`) use the integer
    /// kernels (int16 activations, about 1.5e-5 relative error per product), smaller steps
    /// the float quantized kernels (float32 rounding only). Default
    /// ``defaultIntegerKernelMinRows``.
    public var integerKernelMinRows: Int

    /// 1 (decode too runs on the integer kernels, 1.3x faster than the float ones) when this
    /// CPU has the AVX2 integer kernels, else 5 (the 128-bit integer kernels only pay off
    /// from several rows on).
    public static let defaultIntegerKernelMinRows = QuantIntDot.usesC(.q4_1) ? 1 : 5

    /// How a LoRA adapter given at load time is applied (default: in the forward pass).
    public var adapterMode: AdapterMode

    /// Format of the weight copies (`denseWeights`; Gemma 3 always makes them) that prompt
    /// and batched steps multiply. `.bfloat16` halves their memory and, on CPUs with AVX-512
    /// BF16 (``PackedMatrix/bfloat16IsNative``), doubles the multiply-adds per instruction,
    /// at about 3 significant digits per product (logits move by a few hundredths): a speed
    /// mode for bulk generation. Decode steps of at most 4 rows are unaffected.
    public var weightFormat: PackedMatrix.Format = .float32

    public init(kernels: Kernels = .fast, denseWeights: Bool = true, quantizedRowLimit: Int = 64,
                integerKernelMinRows: Int = defaultIntegerKernelMinRows, adapterMode: AdapterMode = .inForward) {
        self.adapterMode = adapterMode
        self.integerKernelMinRows = integerKernelMinRows
        self.kernels = kernels
        self.denseWeights = denseWeights
        self.quantizedRowLimit = quantizedRowLimit
    }
}

/// New tokens of one sequence in a step; their positions continue from `cache.count`
/// (`LlamaModel.Segment` is the same type).
public struct StepSegment {
    public var cache: KVCache
    public var tokens: [Int]
    public init(cache: KVCache, tokens: [Int]) {
        self.cache = cache
        self.tokens = tokens
    }
}

/// Which rows of a step get logits.
public enum LogitRows: Sendable {
    /// The last row of each segment (generation).
    case last
    /// Every row (scoring a text).
    case all
}

extension LogitRows {
    /// The rows that get logits, given the segments' row offsets (R + 1 of them).
    func picked(offsets: [Int]) -> [Int] {
        self == .all ? Array(0..<offsets.last!) : offsets.dropFirst().map { $0 - 1 }
    }
}

// MARK: - Step layout

extension ModelConfig {
    /// Checks a step's segments against this model and lays them out as stacked rows.
    /// Shared by every architecture's `forward`: nothing is written to a cache before it returns.
    /// - Returns: `offsets` (R + 1 row offsets of the segments in the stacked (R, C) activations)
    ///   and `positions` (the position of each row in its sequence).
    /// - Throws: `ModelError.emptyPrompt`, `.tokenOutOfRange`, `.contextOverflow`.
    func stepLayout(_ segments: [StepSegment]) throws -> (offsets: [Int], positions: [Int]) {
        for s in segments {
            guard !s.tokens.isEmpty else { throw ModelError.emptyPrompt }
            for t in s.tokens where !(0..<vocabularySize).contains(t) {
                throw ModelError.tokenOutOfRange(token: t, vocabularySize: vocabularySize)
            }
            guard s.cache.count + s.tokens.count <= s.cache.capacity else {
                throw ModelError.contextOverflow(tokens: s.cache.count + s.tokens.count, contextLength: s.cache.capacity)
            }
            precondition(s.cache.layers == layerCount && s.cache.width == kvWidth, "cache from another model")
        }
        precondition(Set(segments.map { ObjectIdentifier($0.cache) }).count == segments.count, "a cache appears twice")
        var offsets = [0]
        for s in segments { offsets.append(offsets.last! + s.tokens.count) }
        let positions = segments.flatMap { s in (0..<s.tokens.count).map { s.cache.count + $0 } }
        return (offsets, positions)
    }

    /// Runs `block` on each layer in order with the RoPE table `(cos, sin)` of its base for the
    /// step's positions (made once per base: Gemma 3's local and global layers differ).
    func forEachLayer(positions: [Int], _ block: (_ layer: Int, _ rope: (cos: [Float], sin: [Float])) -> Void) {
        var tables = [Float: (cos: [Float], sin: [Float])]()
        for l in 0..<layerCount {
            let base = ropeBase[l]
            if tables[base] == nil { tables[base] = Ops.ropeTable(positions: positions, headSize: headSize, base: base) }
            block(l, tables[base]!)
        }
    }
}

/// Activation buffers of one step `(R, ·)`, allocated together (every architecture).
final class StepBuffers {
    let x, h, q, k, v, attention, gate, up: UnsafeMutablePointer<Float>

    init(config c: ModelConfig, rows r: Int) {
        x = .allocate(capacity: r * c.embeddingLength)  // (R, C) residual stream
        h = .allocate(capacity: r * max(c.embeddingLength, c.queryWidth))  // (R, max(C, NH*HS)) normalised / projected
        q = .allocate(capacity: r * c.queryWidth)  // (R, NH*HS)
        k = .allocate(capacity: r * c.kvWidth)  // (R, NKV*HS)
        v = .allocate(capacity: r * c.kvWidth)  // (R, NKV*HS)
        attention = .allocate(capacity: r * c.queryWidth)  // (R, NH*HS)
        gate = .allocate(capacity: r * c.feedForwardLength)  // (R, FF)
        up = .allocate(capacity: r * c.feedForwardLength)  // (R, FF)
    }

    func deallocate() {
        for p in [x, h, q, k, v, attention, gate, up] { p.deallocate() }
    }
}
