import Foundation

/// Text <-> token ids. Implementations are immutable and shareable across threads.
public protocol Tokenizer: Sendable {
    /// Number of tokens in the vocabulary; ids are `0..<vocabularySize`.
    var vocabularySize: Int { get }
    /// The special ids named in the model's metadata.
    var specialTokens: SpecialTokens { get }

    /// Encodes `text` into token ids.
    ///
    /// - Parameters:
    ///   - text: the text to encode.
    ///   - addBOS: prepend `specialTokens.bos` (when the model has one).
    ///   - parseSpecial: recognise control tokens written in the text, such as `<|im_start|>`,
    ///     and emit their ids; when false they are encoded as ordinary text.
    /// - Returns: the token ids.
    func encode(_ text: String, addBOS: Bool, parseSpecial: Bool) -> [Int]

    /// The raw bytes a token stands for (its text for control tokens); empty for ids out of range.
    func bytes(of id: Int) -> [UInt8]

    /// Whether `id` is a control token (`<|im_end|>`, BOS, EOS ...).
    func isControl(_ id: Int) -> Bool
}

extension Tokenizer {
    /// Encodes without BOS and without recognising control tokens in the text.
    public func encode(_ text: String) -> [Int] { encode(text, addBOS: false, parseSpecial: false) }

    /// Decodes ids to text; invalid UTF-8 (e.g. a cut multi-byte character) becomes U+FFFD.
    ///
    /// - Parameters:
    ///   - ids: token ids; ids out of range are skipped.
    ///   - skipSpecial: leave out control tokens.
    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        var bytes = [UInt8]()
        for id in ids where !(skipSpecial && isControl(id)) {
            bytes.append(contentsOf: self.bytes(of: id))
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Ids of the special tokens a GGUF file names (`tokenizer.ggml.*_token_id`).
public struct SpecialTokens: Sendable, Equatable {
    public var bos: Int?
    public var eos: Int?
    public var unknown: Int?
    public var padding: Int?
    /// End of turn, when the file names one (`tokenizer.ggml.eot_token_id`).
    public var endOfTurn: Int?
    /// `tokenizer.ggml.add_bos_token` (false when absent).
    public var addBOSByDefault: Bool

    public init(bos: Int? = nil, eos: Int? = nil, unknown: Int? = nil, padding: Int? = nil,
                endOfTurn: Int? = nil, addBOSByDefault: Bool = false) {
        self.bos = bos
        self.eos = eos
        self.unknown = unknown
        self.padding = padding
        self.endOfTurn = endOfTurn
        self.addBOSByDefault = addBOSByDefault
    }
}

extension SpecialTokens {
    /// Reads `tokenizer.ggml.{bos,eos,unknown,padding,eot}_token_id` and `add_bos_token`.
    /// - Throws: `TokenizerError.tokenIDOutOfRange` for an id outside the vocabulary.
    init(metadata: GGUFMetadata, vocabularySize: Int) throws {
        func id(_ name: String) throws -> Int? {
            let key = "tokenizer.ggml.\(name)_token_id"
            guard metadata.contains(key) else { return nil }
            let value = try metadata.int(key)
            guard (0..<vocabularySize).contains(value) else {
                throw TokenizerError.tokenIDOutOfRange(key: key, id: value, vocabularySize: vocabularySize)
            }
            return value
        }
        self.init(
            bos: try id("bos"), eos: try id("eos"), unknown: try id("unknown"), padding: try id("padding"),
            endOfTurn: try id("eot"),
            addBOSByDefault: metadata.contains("tokenizer.ggml.add_bos_token")
                ? try metadata.bool("tokenizer.ggml.add_bos_token") : false)
    }
}

/// Errors building a tokenizer from GGUF metadata (a missing or mistyped key is a `GGUFError`).
public enum TokenizerError: LocalizedError, Equatable, Sendable {
    case unsupportedModel(String)
    case unsupportedPreTokenizer(String)
    case tokenTypeCountMismatch(tokens: Int, types: Int)
    case scoreCountMismatch(tokens: Int, scores: Int)
    case tokenIDOutOfRange(key: String, id: Int, vocabularySize: Int)
    case malformedMerge(index: Int, merge: String)
    case mergeTokenNotInVocabulary(index: Int, token: String)

    public var errorDescription: String? {
        switch self {
        case let .unsupportedModel(name):
            return "tokenizer.ggml.model '\(name)' is not supported (supported: gpt2, llama)"
        case let .unsupportedPreTokenizer(name):
            let supported = PreTokenizer.supportedNames.joined(separator: ", ")
            return "tokenizer.ggml.pre '\(name)' is not supported (supported: \(supported))"
        case let .tokenTypeCountMismatch(tokens, types):
            return "tokenizer.ggml.token_type has \(types) entries, expected one per token (\(tokens))"
        case let .scoreCountMismatch(tokens, scores):
            return "tokenizer.ggml.scores has \(scores) entries, expected one per token (\(tokens))"
        case let .tokenIDOutOfRange(key, id, vocabularySize):
            return "\(key) = \(id) is outside the vocabulary 0..<\(vocabularySize)"
        case let .malformedMerge(index, merge):
            return "tokenizer.ggml.merges[\(index)] '\(merge)' is not two tokens separated by a space"
        case let .mergeTokenNotInVocabulary(index, token):
            return "tokenizer.ggml.merges[\(index)]: token '\(token)' is not in the vocabulary"
        }
    }
}

/// Builds the tokenizer a GGUF file describes, keyed by `tokenizer.ggml.model`.
public enum TokenizerFactory {
    /// - Parameter metadata: the file's metadata.
    /// - Returns: a tokenizer for `tokenizer.ggml.model` ("gpt2": byte-level BPE; "llama":
    ///   SentencePiece-style pieces merged by score).
    /// - Throws: `TokenizerError.unsupportedModel` for other models, `GGUFError` for missing keys.
    public static func make(metadata: GGUFMetadata) throws -> any Tokenizer {
        let model = try metadata.string("tokenizer.ggml.model")
        switch model {
        case "gpt2": return try BPETokenizer(metadata: metadata)
        case "llama": return try SentencePieceTokenizer(metadata: metadata)
        default: throw TokenizerError.unsupportedModel(model)
        }
    }
}
