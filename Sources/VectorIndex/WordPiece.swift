import Foundation

/// BERT's WordPiece tokenizer: the ids Hugging Face `tokenizers` gives for an uncased BERT
/// `tokenizer.json` (checked against golden ids in the tests).
///
/// Pipeline for ``encode(_:maxLength:)``:
/// 1. special tokens written literally in the text (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`,
///    `[MASK]`) are matched first, on the raw text, and kept whole;
/// 2. the rest is normalized and split into words by ``WordPieceNormalizer``;
/// 3. each word becomes word pieces, greedy longest-match-first, continuations prefixed "##";
///    a word longer than ``maxInputCharsPerWord`` scalars, or with an unmatchable part, is `[UNK]`;
/// 4. the pieces are truncated to `maxLength - 2` and wrapped in `[CLS] … [SEP]`.
///
/// Vocabulary lookups compare UTF-8 bytes (as Rust does), not Swift's canonical equivalence.
public struct WordPieceTokenizer: Sendable {
    /// Token strings by id.
    public let vocabulary: [String]
    /// Text normalization and word splitting.
    public let normalizer: WordPieceNormalizer
    /// Longer words become `[UNK]` (the `tokenizers` default, 100).
    public let maxInputCharsPerWord: Int
    /// Prefix of a word piece that continues a word.
    public let continuationPrefix = "##"

    /// Ids of the special tokens.
    public let unknownID: Int32, classifierID: Int32, separatorID: Int32, paddingID: Int32
    private let ids: [[UInt8]: Int32]
    /// Special tokens matched literally in raw text, longest first.
    private let specials: [(scalars: [Unicode.Scalar], id: Int32)]
    /// The longest vocabulary entry in scalars, bounding each greedy match.
    private let longestToken: Int

    // MARK: Loading

    /// Builds a tokenizer from token strings ordered by id.
    /// - Parameters:
    ///   - vocabulary: token strings; the line number is the id.
    ///   - normalizer: normalization settings (uncased BERT by default).
    ///   - maxInputCharsPerWord: longer words become `[UNK]`.
    ///   - source: file name for error messages.
    /// - Throws: ``EmbedderError/missingSpecialToken(file:token:)``.
    public init(vocabulary: [String], normalizer: WordPieceNormalizer = .init(), maxInputCharsPerWord: Int = 100,
                source: String = "vocabulary") throws {
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(vocabulary.count)
        for (i, token) in vocabulary.enumerated() where ids[Array(token.utf8)] == nil {
            ids[Array(token.utf8)] = Int32(i)  // the first occurrence wins, as when reading vocab.txt
        }
        func special(_ token: String) throws -> Int32 {
            guard let id = ids[Array(token.utf8)] else { throw EmbedderError.missingSpecialToken(file: source, token: token) }
            return id
        }
        unknownID = try special("[UNK]")
        classifierID = try special("[CLS]")
        separatorID = try special("[SEP]")
        paddingID = try special("[PAD]")
        specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"].compactMap { token in
            ids[Array(token.utf8)].map { (Array(token.unicodeScalars), $0) }
        }
        self.vocabulary = vocabulary
        self.ids = ids
        self.normalizer = normalizer
        self.maxInputCharsPerWord = maxInputCharsPerWord
        longestToken = vocabulary.map { $0.unicodeScalars.count }.max() ?? 0
    }

    /// Reads a `vocab.txt` (one token per line, the line number is the id).
    /// - Parameters:
    ///   - vocabFile: path of `vocab.txt`.
    ///   - normalizer: normalization settings (uncased BERT by default).
    /// - Throws: ``EmbedderError/missingFile(file:)``, ``EmbedderError/unreadableFile(file:reason:)``,
    ///   ``EmbedderError/missingSpecialToken(file:token:)``.
    public init(vocabFile: String, normalizer: WordPieceNormalizer = .init()) throws {
        guard FileManager.default.fileExists(atPath: vocabFile) else { throw EmbedderError.missingFile(file: vocabFile) }
        let text: String
        do { text = try String(contentsOfFile: vocabFile, encoding: .utf8) } catch {
            throw EmbedderError.unreadableFile(file: vocabFile, reason: error.localizedDescription)
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.last == "\r" ? String(line.dropLast()) : String(line)
        }
        if lines.last == "" { lines.removeLast() }  // the final newline
        try self.init(vocabulary: lines, normalizer: normalizer, source: vocabFile)
    }

    // MARK: Encoding

    /// Token ids for a model input: `[CLS] pieces… [SEP]`, at most `maxLength` ids.
    /// - Parameters:
    ///   - text: raw text (empty gives `[CLS] [SEP]`).
    ///   - maxLength: the model's maximum sequence length (at least 2).
    /// - Returns: the ids.
    public func encode(_ text: String, maxLength: Int) -> [Int32] {
        precondition(maxLength >= 2, "maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
        return [classifierID] + pieceIDs(text).prefix(maxLength - 2) + [separatorID]
    }

    /// Word-piece ids of `text`, without `[CLS]`/`[SEP]` and without truncation.
    /// - Parameter text: raw text.
    /// - Returns: the ids.
    public func pieceIDs(_ text: String) -> [Int32] {
        var out: [Int32] = []
        for segment in splitOnSpecialTokens(text) {
            switch segment {
            case let .special(id): out.append(id)
            case let .text(t): for word in normalizer.words(t) { appendPieces(of: word, to: &out) }
            }
        }
        return out
    }

    /// Word pieces of `text` as strings (for inspection and tests).
    /// - Parameter text: raw text.
    /// - Returns: the pieces, e.g. `["cyclo", "##oxy", "##genase"]`.
    public func tokenize(_ text: String) -> [String] {
        pieceIDs(text).map { vocabulary[Int($0)] }
    }

    // MARK: Greedy longest match

    /// Appends the pieces of one normalized word, or `[UNK]`.
    private func appendPieces(of word: [Unicode.Scalar], to out: inout [Int32]) {
        guard word.count <= maxInputCharsPerWord else { out.append(unknownID); return }
        var pieces: [Int32] = []
        var start = 0
        while start < word.count {
            var end = min(word.count, start + longestToken)
            var found: Int32?
            while start < end {
                var key: [UInt8] = start > 0 ? Array(continuationPrefix.utf8) : []
                for s in word[start..<end] { key.append(contentsOf: UTF8.encode(s)!) }
                if let id = ids[key] { found = id; break }
                end -= 1
            }
            guard let id = found else { out.append(unknownID); return }  // the whole word is unknown
            pieces.append(id)
            start = end
        }
        out.append(contentsOf: pieces)
    }

    // MARK: Special tokens in raw text

    private enum Segment { case text(String), special(Int32) }

    /// Splits raw text around literal special tokens (leftmost, then longest).
    private func splitOnSpecialTokens(_ text: String) -> [Segment] {
        guard text.contains("[") else { return [.text(text)] }
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var pending = String.UnicodeScalarView()
        var i = 0
        scan: while i < scalars.count {
            if scalars[i] == "[" {
                for (token, id) in specials where i + token.count <= scalars.count
                    && scalars[i..<(i + token.count)].elementsEqual(token) {
                    if !pending.isEmpty { segments.append(.text(String(pending))); pending = .init() }
                    segments.append(.special(id))
                    i += token.count
                    continue scan
                }
            }
            pending.append(scalars[i])
            i += 1
        }
        if !pending.isEmpty { segments.append(.text(String(pending))) }
        return segments
    }
}
