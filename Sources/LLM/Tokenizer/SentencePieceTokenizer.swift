/// SentencePiece-style tokenizer (`tokenizer.ggml.model = "llama"`: Llama 1/2, Mistral, Gemma),
/// built from GGUF metadata: token texts, scores and types.
///
/// Encoding follows llama.cpp (`llm_tokenizer_spm`), which reproduces SentencePiece's BPE mode:
/// 1. user-defined tokens (always) and control tokens (with `parseSpecial`) are cut out of the
///    text first, longest match at each byte;
/// 2. in each stretch of ordinary text every space becomes "▁" (U+2581), with one "▁" put in front
///    when `tokenizer.ggml.add_space_prefix` says so (Llama 2 yes, Gemma 3 no) and the stretch
///    starts the text or follows a special token;
/// 3. the stretch starts as one symbol per character; the adjacent pair whose concatenation is the
///    vocabulary token with the **highest score** is merged first (leftmost on ties), until no
///    pair forms a token. No pre-tokenizer splits words: the merges run over the whole stretch;
/// 4. a remaining symbol that is not a token comes out as its bytes (`<0xNN>` byte tokens: the
///    byte fallback), or as the unknown token when the file has no byte tokens.
///
/// Decoding maps "▁" back to a space and byte tokens to their byte. The leading space that
/// `add_space_prefix` adds is kept in the decoded text (it is part of the first token).
public final class SentencePieceTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    /// Token texts as stored ("▁" for spaces, `<0xNN>` for byte tokens).
    public let tokens: [String]
    /// `tokenizer.ggml.scores`: the merge priority (higher merges first).
    public let scores: [Float]
    /// `tokenizer.ggml.token_type` per token (1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte); all 1 when the file has none.
    public let tokenTypes: [Int]
    /// `tokenizer.ggml.add_space_prefix` (true when absent, as in llama.cpp).
    public let addSpacePrefix: Bool

    /// Token text -> id, over the stored texts.
    private let lookup: TokenLookup
    /// Id of the token for each byte value (`<0xNN>`, else the one-byte token, else unknown).
    private let byteTokens: [Int32]
    /// Decoded bytes of token `i`: `pieceBlob[pieceOffsets[i]..<pieceOffsets[i + 1]]`.
    private let pieceBlob: [UInt8]
    private let pieceOffsets: [Int32]  // (V + 1)
    private let specials: SpecialTokenMatcher

    /// "▁" U+2581 in UTF-8.
    static let spaceMark: [UInt8] = [0xE2, 0x96, 0x81]

    /// - Parameter metadata: GGUF metadata with the `tokenizer.ggml.*` keys.
    /// - Throws: `GGUFError` for missing or mistyped keys, `TokenizerError` for inconsistent ones.
    public init(metadata: GGUFMetadata) throws {
        let model = try metadata.string("tokenizer.ggml.model")
        guard model == "llama" else { throw TokenizerError.unsupportedModel(model) }
        tokens = try metadata.strings("tokenizer.ggml.tokens")
        vocabularySize = tokens.count
        if metadata.contains("tokenizer.ggml.scores") {
            scores = try metadata.floats("tokenizer.ggml.scores")
            guard scores.count == tokens.count else {
                throw TokenizerError.scoreCountMismatch(tokens: tokens.count, scores: scores.count)
            }
        } else {
            scores = [Float](repeating: 0, count: tokens.count)
        }
        if metadata.contains("tokenizer.ggml.token_type") {
            tokenTypes = try metadata.ints("tokenizer.ggml.token_type")
            guard tokenTypes.count == tokens.count else {
                throw TokenizerError.tokenTypeCountMismatch(tokens: tokens.count, types: tokenTypes.count)
            }
        } else {
            tokenTypes = [Int](repeating: SpecialTokenMatcher.normalType, count: tokens.count)
        }
        var special = try SpecialTokens(metadata: metadata, vocabularySize: tokens.count)
        // llama.cpp's defaults for SentencePiece vocabularies when the keys are absent.
        if !metadata.contains("tokenizer.ggml.add_bos_token") { special.addBOSByDefault = true }
        if !metadata.contains("tokenizer.ggml.bos_token_id") && tokens.count > 1 { special.bos = 1 }
        if !metadata.contains("tokenizer.ggml.eos_token_id") && tokens.count > 2 { special.eos = 2 }
        if !metadata.contains("tokenizer.ggml.unknown_token_id") && !tokens.isEmpty { special.unknown = 0 }
        specialTokens = special
        addSpacePrefix = metadata.contains("tokenizer.ggml.add_space_prefix")
            ? try metadata.bool("tokenizer.ggml.add_space_prefix") : true

        lookup = TokenLookup(texts: tokens)
        (pieceBlob, pieceOffsets) = Self.decodedPieces(tokens, tokenTypes)
        byteTokens = Self.byteTokenTable(lookup, unknown: special.unknown ?? 0)
        let (blob, offsets) = (pieceBlob, pieceOffsets)
        specials = SpecialTokenMatcher(tokenTypes: tokenTypes) { id in
            Array(blob[Int(offsets[id])..<Int(offsets[id + 1])])
        }
    }

    /// The bytes each token decodes to, back to back.
    private static func decodedPieces(_ tokens: [String], _ types: [Int]) -> ([UInt8], [Int32]) {
        var blob = [UInt8]()
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for (id, token) in tokens.enumerated() {
            let utf8 = Array(token.utf8)
            switch types[id] {
            case SpecialTokenMatcher.byteType:
                if let byte = parseByteToken(utf8) { blob.append(byte) } else { blob.append(contentsOf: utf8) }
            case SpecialTokenMatcher.controlType, SpecialTokenMatcher.userDefinedType:
                blob.append(contentsOf: utf8)
            default:
                appendUnescaped(utf8, to: &blob)
            }
            offsets.append(Int32(blob.count))
        }
        return (blob, offsets)
    }

    /// "<0xNN>" -> NN.
    static func parseByteToken(_ utf8: [UInt8]) -> UInt8? {
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"),
              utf8[2] == UInt8(ascii: "x"), utf8[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    /// Appends `utf8` with every "▁" turned back into a space.
    private static func appendUnescaped(_ utf8: [UInt8], to out: inout [UInt8]) {
        var i = 0
        while i < utf8.count {
            if i + 2 < utf8.count && utf8[i] == 0xE2 && utf8[i + 1] == 0x96 && utf8[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(utf8[i])
                i += 1
            }
        }
    }

    /// llama.cpp `byte_to_token`: the `<0xNN>` token, else the token that is the byte itself.
    private static func byteTokenTable(_ lookup: TokenLookup, unknown: Int) -> [Int32] {
        let hex = Array("0123456789ABCDEF".utf8)
        return (0..<256).map { b in
            let name = "<0x" + String(decoding: [hex[b >> 4], hex[b & 15]], as: UTF8.self) + ">"
            if let id = lookup.id(of: name) { return Int32(id) }
            let single = [UInt8(b)]
            if let id = single.withUnsafeBufferPointer({ lookup.id(of: $0) }) { return Int32(id) }
            return Int32(unknown)
        }
    }

    // MARK: Tokenizer

    public func bytes(of id: Int) -> [UInt8] {
        guard (0..<vocabularySize).contains(id) else { return [] }
        return Array(pieceBlob[Int(pieceOffsets[id])..<Int(pieceOffsets[id + 1])])
    }

    public func isControl(_ id: Int) -> Bool {
        tokenTypes.indices.contains(id) && tokenTypes[id] == SpecialTokenMatcher.controlType
    }

    public func encode(_ text: String, addBOS: Bool, parseSpecial: Bool) -> [Int] {
        var out = [Int]()
        if addBOS, let bos = specialTokens.bos { out.append(bos) }
        var scratch = Scratch()
        var afterSpecial = true  // the start of the text counts as "after a special token"
        var text = text
        text.withUTF8 { utf8 in
            specials.split(utf8, parseSpecial: parseSpecial, ordinary: { piece in
                encodeOrdinary(piece, prefixSpace: addSpacePrefix && afterSpecial, &scratch, &out)
                afterSpecial = false
            }, special: { id in
                out.append(id)
                afterSpecial = true
            })
        }
        return out
    }

    // MARK: Merging by score

    /// Buffers reused across the stretches of one `encode` call.
    private struct Scratch {
        var text: [UInt8] = []     // the stretch with spaces escaped
        var start: [Int32] = []    // byte offset of each symbol
        var length: [Int32] = []   // byte length of each symbol; 0 once merged into its left neighbour
        var prev: [Int32] = []     // previous live symbol, or -1
        var next: [Int32] = []     // next live symbol, or -1
        var heap: [Bigram] = []
    }

    /// A candidate merge of symbols `left` and `right`, valid while their lengths still add up to
    /// `size`. `key` orders the heap: highest score first, then leftmost.
    private struct Bigram {
        var key: UInt64
        var right: Int32
        var size: Int32
    }

    private func encodeOrdinary(_ utf8: UnsafeBufferPointer<UInt8>, prefixSpace: Bool,
                                _ s: inout Scratch, _ out: inout [Int]) {
        s.text.removeAll(keepingCapacity: true)
        if prefixSpace { s.text.append(contentsOf: Self.spaceMark) }
        for b in utf8 {
            if b == 0x20 { s.text.append(contentsOf: Self.spaceMark) } else { s.text.append(b) }
        }
        s.start.removeAll(keepingCapacity: true)
        s.length.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        s.heap.removeAll(keepingCapacity: true)

        // One symbol per UTF-8 character.
        let n = s.text.count
        var offset = 0
        while offset < n {
            let length = min(Self.utf8Length(s.text[offset]), n - offset)
            let index = Int32(s.start.count)
            s.start.append(Int32(offset))
            s.length.append(Int32(length))
            s.prev.append(index - 1)
            offset += length
            s.next.append(offset == n ? -1 : index + 1)
        }
        guard !s.start.isEmpty else { return }

        s.text.withUnsafeBufferPointer { text in
            for i in 1..<s.start.count { tryAddBigram(Int32(i - 1), Int32(i), text, &s) }
            while let bigram = popMin(&s.heap) {
                let left = Int(bigram.key & 0xFFFF_FFFF), right = Int(bigram.right)
                // Stale: one side was merged away or grew since the candidate was pushed.
                if s.length[left] == 0 || s.length[right] == 0 || s.length[left] + s.length[right] != bigram.size {
                    continue
                }
                s.length[left] += s.length[right]
                s.length[right] = 0
                s.next[left] = s.next[right]
                if s.next[right] >= 0 { s.prev[Int(s.next[right])] = Int32(left) }
                tryAddBigram(s.prev[left], Int32(left), text, &s)
                tryAddBigram(Int32(left), s.next[left], text, &s)
            }
            // Every merged symbol is a token; a single character may not be: its bytes then.
            var i = 0
            while i >= 0 {
                let piece = UnsafeBufferPointer(rebasing: text[Int(s.start[i])..<Int(s.start[i] + s.length[i])])
                if let id = lookup.id(of: piece) {
                    out.append(id)
                } else {
                    for b in piece { out.append(Int(byteTokens[Int(b)])) }
                }
                i = Int(s.next[i])
            }
        }
    }

    @inline(__always)
    private func tryAddBigram(_ left: Int32, _ right: Int32, _ text: UnsafeBufferPointer<UInt8>, _ s: inout Scratch) {
        guard left >= 0, right >= 0 else { return }
        let start = Int(s.start[Int(left)])
        let size = Int(s.length[Int(left)] + s.length[Int(right)])
        guard let id = lookup.id(of: UnsafeBufferPointer(rebasing: text[start..<(start + size)])) else { return }
        let key = UInt64(~Self.sortable(scores[id])) << 32 | UInt64(UInt32(left))
        pushHeap(&s.heap, Bigram(key: key, right: right, size: Int32(size)))
    }

    /// A UInt32 that orders like the float (with -0 equal to +0).
    @inline(__always)
    static func sortable(_ x: Float) -> UInt32 {
        let bits = (x == 0 ? Float(0) : x).bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// Bytes in the UTF-8 character that starts with `lead` (1 for stray continuation bytes).
    @inline(__always)
    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0xF0...0xFF: return 4
        case 0xE0...0xEF: return 3
        case 0xC0...0xDF: return 2
        default: return 1
        }
    }

    // MARK: Binary min-heap of bigrams (by key)

    @inline(__always)
    private func pushHeap(_ heap: inout [Bigram], _ value: Bigram) {
        heap.append(value)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if heap[parent].key <= value.key { break }
            heap[i] = heap[parent]
            i = parent
        }
        heap[i] = value
    }

    @inline(__always)
    private func popMin(_ heap: inout [Bigram]) -> Bigram? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        var i = 0
        let n = heap.count
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && heap[child + 1].key < heap[child].key { child += 1 }
            if last.key <= heap[child].key { break }
            heap[i] = heap[child]
            i = child
        }
        heap[i] = last
        return top
    }
}
