import Foundation

/// The `config.json` of a BERT encoder (Hugging Face `BertModel` keys).
public struct BERTConfig: Codable, Sendable, Equatable {
    /// C, the hidden size.
    public var hiddenSize: Int
    /// L, the number of encoder layers.
    public var numHiddenLayers: Int
    /// NH, the number of attention heads (head size HS = C / NH).
    public var numAttentionHeads: Int
    /// F, the feed-forward inner size.
    public var intermediateSize: Int
    /// P, the number of learned positions.
    public var maxPositionEmbeddings: Int
    /// Number of token types (segment A/B).
    public var typeVocabSize: Int
    /// V, the vocabulary size.
    public var vocabSize: Int
    /// LayerNorm epsilon.
    public var layerNormEps: Float
    /// The feed-forward activation; only "gelu" (the erf form) is supported.
    public var hiddenAct: String

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case vocabSize = "vocab_size", layerNormEps = "layer_norm_eps", hiddenAct = "hidden_act"
    }

    /// HS, the size of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// Reads and checks `config.json`.
    /// - Parameter file: path of `config.json`.
    /// - Returns: the configuration.
    /// - Throws: ``EmbedderError/missingFile(file:)``, ``EmbedderError/unreadableFile(file:reason:)``
    ///   or ``EmbedderError/unsupportedConfig(file:key:expected:actual:)``.
    public static func load(file: String) throws -> BERTConfig {
        guard let data = FileManager.default.contents(atPath: file) else { throw EmbedderError.missingFile(file: file) }
        let config: BERTConfig
        do { config = try JSONDecoder().decode(BERTConfig.self, from: data) } catch {
            throw EmbedderError.unreadableFile(file: file, reason: "\(error)")
        }
        try config.validate(file: file)
        return config
    }

    /// Checks the values this implementation relies on.
    /// - Parameter file: the config's path, for error messages.
    /// - Throws: ``EmbedderError/unsupportedConfig(file:key:expected:actual:)``.
    public func validate(file: String) throws {
        func positive(_ key: String, _ v: Int) throws {
            guard v > 0 else { throw EmbedderError.unsupportedConfig(file: file, key: key, expected: "> 0", actual: "\(v)") }
        }
        try positive("hidden_size", hiddenSize)
        try positive("num_hidden_layers", numHiddenLayers)
        try positive("num_attention_heads", numAttentionHeads)
        try positive("intermediate_size", intermediateSize)
        try positive("max_position_embeddings", maxPositionEmbeddings)
        try positive("type_vocab_size", typeVocabSize)
        try positive("vocab_size", vocabSize)
        guard hiddenSize % numAttentionHeads == 0 else {
            throw EmbedderError.unsupportedConfig(file: file, key: "hidden_size", expected: "a multiple of num_attention_heads (\(numAttentionHeads))",
                                                  actual: "\(hiddenSize)")
        }
        guard hiddenAct == "gelu" else {
            throw EmbedderError.unsupportedConfig(file: file, key: "hidden_act", expected: "gelu", actual: hiddenAct)
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw EmbedderError.unsupportedConfig(file: file, key: "layer_norm_eps", expected: "> 0", actual: "\(layerNormEps)")
        }
    }
}
