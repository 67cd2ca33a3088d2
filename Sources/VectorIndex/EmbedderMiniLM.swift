import Foundation
import Tensor

/// An in-process sentence embedder for BERT-family sentence-transformers models with mean
/// pooling, such as all-MiniLM-L6-v2 (L = 6, C = 384, NH = 12): WordPiece ids → BERT encoder →
/// mean over the tokens → L2 normalization. Matches sentence-transformers to cosine ≥ 0.9999.
///
/// The model folder holds `config.json`, `vocab.txt`, `model.safetensors` and optionally
/// `tokenizer_config.json` (`do_lower_case`), `sentence_bert_config.json` (`max_seq_length`)
/// and `1_Pooling/config.json` (must select mean pooling).
///
/// Batching: texts are tokenized on all cores, sorted by token count (longest first) and cut into
/// forward passes of at most ``Options/maxBatchTokens`` tokens. Sequences inside a pass are
/// packed without padding (see ``BERTEncoder``), so a batch wastes nothing on padding and
/// similar lengths keep the per-sequence attention work even. Results come back in input order.
/// GEMMs use OpenBLAS's threads; softmax, GELU and LayerNorm are split over the cores.
public final class MiniLMEmbedder: Embedder {
    /// Loading and batching settings.
    public struct Options: Sendable {
        /// Tokens per text including `[CLS]` and `[SEP]`; longer texts are truncated.
        /// `nil` reads `max_seq_length` from `sentence_bert_config.json`, else uses
        /// ``defaultMaxSequenceLength``.
        public var maxSequenceLength: Int?
        /// Most tokens in one forward pass; activations take about `4·(6C + F)` bytes per token
        /// (15 KB for MiniLM), so the default 4096 needs ≈ 63 MB.
        public var maxBatchTokens: Int

        /// - Parameters:
        ///   - maxSequenceLength: truncation length; `nil` for the model folder's value.
        ///   - maxBatchTokens: most tokens per forward pass (default 4096).
        public init(maxSequenceLength: Int? = nil, maxBatchTokens: Int = 4096) {
            self.maxSequenceLength = maxSequenceLength
            self.maxBatchTokens = maxBatchTokens
        }
    }

    /// all-MiniLM-L6-v2's `max_seq_length` (its `sentence_bert_config.json`), used when the folder has none.
    public static let defaultMaxSequenceLength = 256

    public let dimension: Int
    public let modelID: String
    /// Tokens per text including `[CLS]` and `[SEP]`.
    public let maxSequenceLength: Int
    /// The tokenizer.
    public let tokenizer: WordPieceTokenizer
    /// The encoder.
    public let encoder: BERTEncoder
    private let maxBatchTokens: Int

    // MARK: Loading

    /// Loads a model folder.
    /// - Parameters:
    ///   - modelDirectory: e.g. `models/all-MiniLM-L6-v2`.
    ///   - options: truncation and batching settings.
    /// - Throws: ``EmbedderError`` naming the file (and tensor) at fault.
    public init(modelDirectory: String, options: Options = .init()) throws {
        let dir = URL(fileURLWithPath: modelDirectory)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

        let config = try BERTConfig.load(file: path("config.json"))
        let tokenizerConfig = try Self.optionalJSON(path("tokenizer_config.json"))
        let sentenceConfig = try Self.optionalJSON(path("sentence_bert_config.json"))
        try Self.checkPooling(file: path("1_Pooling/config.json"), hidden: config.hiddenSize)

        // The tokenizer's own `do_lower_case` decides; sentence-transformers' `do_lower_case`
        // (sentence_bert_config.json) only adds lower-casing before the tokenizer, so `false`
        // there must not switch off an uncased tokenizer's lower-casing (all-MiniLM-L6-v2 ships
        // `false` there and `true` in tokenizer_config.json).
        let lowercase = (tokenizerConfig?["do_lower_case"] as? Bool ?? true) || (sentenceConfig?["do_lower_case"] as? Bool ?? false)
        tokenizer = try WordPieceTokenizer(vocabFile: path("vocab.txt"), normalizer: WordPieceNormalizer(lowercase: lowercase))
        guard tokenizer.vocabulary.count == config.vocabSize else {
            throw EmbedderError.unsupportedConfig(file: path("vocab.txt"), key: "vocabulary size",
                                                  expected: "\(config.vocabSize) (config.json vocab_size)",
                                                  actual: "\(tokenizer.vocabulary.count)")
        }

        let length = options.maxSequenceLength ?? (sentenceConfig?["max_seq_length"] as? Int) ?? Self.defaultMaxSequenceLength
        guard length >= 2, length <= config.maxPositionEmbeddings else {
            throw EmbedderError.unsupportedConfig(file: path("sentence_bert_config.json"), key: "max_seq_length",
                                                  expected: "2…\(config.maxPositionEmbeddings)", actual: "\(length)")
        }
        maxSequenceLength = length
        maxBatchTokens = max(options.maxBatchTokens, length)
        encoder = BERTEncoder(config: config, weights: try BERTWeights(file: path("model.safetensors"), config: config))
        dimension = config.hiddenSize
        modelID = dir.standardizedFileURL.lastPathComponent
    }

    private static func optionalJSON(_ file: String) throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw EmbedderError.unreadableFile(file: file, reason: "not a JSON object")
            }
            return object
        } catch let error as EmbedderError {
            throw error
        } catch {
            throw EmbedderError.unreadableFile(file: file, reason: error.localizedDescription)
        }
    }

    /// Only mean pooling over the hidden size is implemented; refuse any other pooling config.
    private static func checkPooling(file: String, hidden: Int) throws {
        guard let pooling = try optionalJSON(file) else { return }
        if let d = pooling["word_embedding_dimension"] as? Int, d != hidden {
            throw EmbedderError.unsupportedConfig(file: file, key: "word_embedding_dimension", expected: "\(hidden)", actual: "\(d)")
        }
        for (key, wanted) in [("pooling_mode_mean_tokens", true), ("pooling_mode_cls_token", false),
                              ("pooling_mode_max_tokens", false), ("pooling_mode_mean_sqrt_len_tokens", false)] {
            if let v = pooling[key] as? Bool, v != wanted {
                throw EmbedderError.unsupportedConfig(file: file, key: key, expected: "\(wanted)", actual: "\(v)")
            }
        }
    }

    // MARK: Embedding

    /// Model input ids of one text: `[CLS] pieces… [SEP]`, truncated to ``maxSequenceLength``.
    /// - Parameter text: raw text.
    /// - Returns: the ids.
    public func tokenIDs(_ text: String) -> [Int32] {
        tokenizer.encode(text, maxLength: maxSequenceLength)
    }

    /// Embeds texts (see the type's notes on batching).
    /// - Parameter texts: the texts; empty strings are allowed.
    /// - Returns: one unit vector of length ``dimension`` per text, in input order.
    public func embed(_ texts: [String]) throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        var ids = [[Int32]](repeating: [], count: texts.count)
        ids.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(0..<texts.count, chunks: texts.count >= 8 ? Parallel.coreCount : 1) { range in
                for i in range { out[i] = tokenIDs(texts[i]) }
            }
        }
        // Longest first, ties by input position so the order is deterministic.
        let order = ids.indices.sorted { (ids[$0].count, $1) > (ids[$1].count, $0) }
        var result = [[Float]](repeating: [], count: texts.count)
        var start = 0
        while start < order.count {
            var end = start, tokens = 0
            while end < order.count, tokens + ids[order[end]].count <= maxBatchTokens {
                tokens += ids[order[end]].count
                end += 1
            }
            let batch = order[start..<end]
            let vectors = encoder.meanPooledEmbeddings(batch.map { ids[$0] })
            for (i, v) in zip(batch, vectors) { result[i] = v }
            start = end
        }
        return result
    }
}
