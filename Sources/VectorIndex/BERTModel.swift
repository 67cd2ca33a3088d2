import Tensor

// Dimensions: V vocabulary, P positions, C hidden, F feed-forward inner, NH heads, HS = C / NH.
// Stored names follow the checkpoint's tensor names (`encoder.layer.N.attention.self.query.weight`…).
// A PyTorch Linear weight is (out, in): y = x Wᵀ + b.

/// LayerNorm parameters.
public struct BERTLayerNorm: Sendable {
    /// `(C)` scale.
    public var weight: [Float]
    /// `(C)` shift.
    public var bias: [Float]
}

/// One encoder layer's weights.
public struct BERTLayerWeights: Sendable {
    /// `(3C, C)`: `attention.self.{query,key,value}.weight` stacked, so one GEMM makes Q, K and V.
    public var qkvWeight: [Float]
    /// `(3C)`: the three biases stacked.
    public var qkvBias: [Float]
    /// `(C, C)` `attention.output.dense.weight`.
    public var attentionOutputWeight: [Float]
    /// `(C)` `attention.output.dense.bias`.
    public var attentionOutputBias: [Float]
    /// `attention.output.LayerNorm`.
    public var attentionNorm: BERTLayerNorm
    /// `(F, C)` `intermediate.dense.weight`.
    public var intermediateWeight: [Float]
    /// `(F)` `intermediate.dense.bias`.
    public var intermediateBias: [Float]
    /// `(C, F)` `output.dense.weight`.
    public var outputWeight: [Float]
    /// `(C)` `output.dense.bias`.
    public var outputBias: [Float]
    /// `output.LayerNorm`.
    public var outputNorm: BERTLayerNorm
}

/// All weights of a BERT encoder (the pooler is not used by sentence embeddings and not loaded).
public struct BERTWeights: Sendable {
    /// `(V, C)` `embeddings.word_embeddings.weight`.
    public var wordEmbeddings: [Float]
    /// `(P, C)` `embeddings.position_embeddings.weight`.
    public var positionEmbeddings: [Float]
    /// `(types, C)` `embeddings.token_type_embeddings.weight`.
    public var tokenTypeEmbeddings: [Float]
    /// `embeddings.LayerNorm`.
    public var embeddingNorm: BERTLayerNorm
    /// The L encoder layers.
    public var layers: [BERTLayerWeights]

    /// Loads every tensor, checking each shape against `config`.
    /// - Parameters:
    ///   - file: the `.safetensors` checkpoint (F32, F16 or BF16).
    ///   - config: the model configuration.
    ///   - prefix: a prefix on every name (e.g. `"bert."` in some checkpoints); empty by default.
    /// - Throws: ``EmbedderError/missingFile(file:)``, ``EmbedderError/missingTensor(file:tensor:)``,
    ///   ``EmbedderError/wrongShape(file:tensor:expected:actual:)``, ``EmbedderError/invalidCheckpoint(_:)``.
    public init(file: String, config: BERTConfig, prefix: String = "") throws {
        let st: SafetensorsFile
        do { st = try SafetensorsFile(path: file) } catch let error as SafetensorsError {
            if case .cannotOpen = error { throw EmbedderError.missingFile(file: file) }
            throw EmbedderError.invalidCheckpoint(error)
        }
        let c = config.hiddenSize, f = config.intermediateSize
        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            let full = prefix + name
            guard let entry = st.entries[full] else { throw EmbedderError.missingTensor(file: file, tensor: full) }
            guard entry.shape == shape else {
                throw EmbedderError.wrongShape(file: file, tensor: full, expected: shape, actual: entry.shape)
            }
            do { return try st.floats(full).values } catch let error as SafetensorsError {
                throw EmbedderError.invalidCheckpoint(error)
            }
        }
        func norm(_ name: String) throws -> BERTLayerNorm {
            BERTLayerNorm(weight: try load(name + ".weight", [c]), bias: try load(name + ".bias", [c]))
        }
        wordEmbeddings = try load("embeddings.word_embeddings.weight", [config.vocabSize, c])
        positionEmbeddings = try load("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, c])
        tokenTypeEmbeddings = try load("embeddings.token_type_embeddings.weight", [config.typeVocabSize, c])
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<config.numHiddenLayers).map { l in
            let p = "encoder.layer.\(l)."
            let attention = p + "attention.self."
            return BERTLayerWeights(
                qkvWeight: try load(attention + "query.weight", [c, c]) + load(attention + "key.weight", [c, c])
                    + load(attention + "value.weight", [c, c]),
                qkvBias: try load(attention + "query.bias", [c]) + load(attention + "key.bias", [c])
                    + load(attention + "value.bias", [c]),
                attentionOutputWeight: try load(p + "attention.output.dense.weight", [c, c]),
                attentionOutputBias: try load(p + "attention.output.dense.bias", [c]),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediateWeight: try load(p + "intermediate.dense.weight", [f, c]),
                intermediateBias: try load(p + "intermediate.dense.bias", [f]),
                outputWeight: try load(p + "output.dense.weight", [c, f]),
                outputBias: try load(p + "output.dense.bias", [c]),
                outputNorm: try norm(p + "output.LayerNorm"))
        }
    }
}
