/// A decoder-only language model with a KV cache: what `TextGenerator` needs to run one or many
/// sequences, whatever the architecture (`LlamaModel` for llama/qwen2, `Gemma3Model` for gemma3).
///
/// A step is a list of `Segment`s (new tokens of distinct sequences, each with its own cache)
/// whose rows run through the model together; see `LlamaModel.forward`.
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
    func forward(_ segments: [LlamaModel.Segment], logits rows: LlamaModel.LogitRows) throws -> [Float]
}

extension CausalLanguageModel {
    /// A cache of f16 elements for one sequence of up to `capacity` positions.
    public func makeCache(capacity: Int? = nil) -> KVCache {
        makeCache(capacity: capacity, precision: .f16)
    }

    /// Logits `(B, V)` of the last row of each segment.
    public func forward(_ segments: [LlamaModel.Segment]) throws -> [Float] {
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
public func loadLanguageModel(file: GGUFFile, options: LlamaModel.Options = .init(),
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

// MARK: - Step layout

extension ModelConfig {
    /// Checks a step's segments against this model and lays them out as stacked rows.
    /// Shared by every architecture's `forward`: nothing is written to a cache before it returns.
    /// - Returns: `offsets` (R + 1 row offsets of the segments in the stacked (R, C) activations)
    ///   and `positions` (the position of each row in its sequence).
    /// - Throws: `ModelError.emptyPrompt`, `.tokenOutOfRange`, `.contextOverflow`.
    func stepLayout(_ segments: [LlamaModel.Segment]) throws -> (offsets: [Int], positions: [Int]) {
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
}
