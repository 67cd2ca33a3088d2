/// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), built from GGUF metadata.
///
/// Encoding: split out control tokens (when asked), cut the rest into words with the
/// `PreTokenizer` named by `tokenizer.ggml.pre`, map each word's bytes to their byte tokens and
/// apply merges lowest rank first (leftmost on ties), as Hugging Face `tokenizers` and llama.cpp do.
/// A byte the vocabulary has no token for is dropped, as llama.cpp does.
public final class BPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let specialTokens: SpecialTokens
    public let preTokenizer: PreTokenizer
    /// Token strings as stored (byte-level alphabet).
    public let tokens: [String]
    /// `tokenizer.ggml.token_type` per token (1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte); all 1 when the file has none.
    public let tokenTypes: [Int]

    /// Raw bytes per token (control and user-defined tokens: their UTF-8 text).
    private let tokenBytes: [[UInt8]]
    /// Token id of each single byte, or -1.
    private let byteTokens: [Int32]
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    private let merges: MergeTable
    /// Tokens matched in the text before pre-tokenizing: user-defined tokens always, control
    /// tokens only when `parseSpecial` is set.
    private let specials: SpecialTokenMatcher

    public static let controlType = SpecialTokenMatcher.controlType
    public static let userDefinedType = SpecialTokenMatcher.userDefinedType

    /// - Parameter metadata: GGUF metadata with the `tokenizer.ggml.*` keys.
    /// - Throws: `GGUFError` for missing or mistyped keys, `TokenizerError` for inconsistent ones.
    public init(metadata: GGUFMetadata) throws {
        let model = try metadata.string("tokenizer.ggml.model")
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(model) }
        preTokenizer = try PreTokenizer(ggmlName: metadata["tokenizer.ggml.pre"]?.stringValue ?? "default")
        tokens = try metadata.strings("tokenizer.ggml.tokens")
        vocabularySize = tokens.count
        if metadata.contains("tokenizer.ggml.token_type") {
            tokenTypes = try metadata.ints("tokenizer.ggml.token_type")
            guard tokenTypes.count == tokens.count else {
                throw TokenizerError.tokenTypeCountMismatch(tokens: tokens.count, types: tokenTypes.count)
            }
        } else {
            tokenTypes = [Int](repeating: 1, count: tokens.count)
        }
        specialTokens = try SpecialTokens(metadata: metadata, vocabularySize: tokens.count)

        // Bytes of every token; the id of every single byte.
        var tokenBytes = [[UInt8]]()
        tokenBytes.reserveCapacity(tokens.count)
        var ids = [String: Int]()
        ids.reserveCapacity(tokens.count)
        var byteTokens = [Int32](repeating: -1, count: 256)
        for (id, token) in tokens.enumerated() {
            ids[token] = id
            let special = tokenTypes[id] == Self.controlType || tokenTypes[id] == Self.userDefinedType
            let bytes = special ? Array(token.utf8) : (ByteLevel.decode(token) ?? Array(token.utf8))
            if bytes.count == 1 && !special && byteTokens[Int(bytes[0])] < 0 { byteTokens[Int(bytes[0])] = Int32(id) }
            tokenBytes.append(bytes)
        }
        self.tokenBytes = tokenBytes
        self.byteTokens = byteTokens
        merges = try Self.readMerges(metadata, ids: ids)
        specials = SpecialTokenMatcher(tokenTypes: tokenTypes) { tokenBytes[$0] }
    }

    /// Merges "left right", rank = position in the list.
    private static func readMerges(_ metadata: GGUFMetadata, ids: [String: Int]) throws -> MergeTable {
        let list = try metadata.strings("tokenizer.ggml.merges")
        var merges = MergeTable(capacity: list.count)
        for (rank, merge) in list.enumerated() {
            // The separator is the first space after the first character (a left part is never empty).
            guard !merge.isEmpty, let space = merge.dropFirst().firstIndex(of: " ") else {
                throw TokenizerError.malformedMerge(index: rank, merge: merge)
            }
            let left = String(merge[..<space]), right = String(merge[merge.index(after: space)...])
            guard let l = ids[left] else { throw TokenizerError.mergeTokenNotInVocabulary(index: rank, token: left) }
            guard let r = ids[right] else { throw TokenizerError.mergeTokenNotInVocabulary(index: rank, token: right) }
            guard let m = ids[left + right] else {
                throw TokenizerError.mergeTokenNotInVocabulary(index: rank, token: left + right)
            }
            merges.insertIfAbsent(UInt64(l) << 32 | UInt64(r), UInt64(rank) << 32 | UInt64(m))
        }
        return merges
    }

    // MARK: Tokenizer

    public func bytes(of id: Int) -> [UInt8] {
        tokenBytes.indices.contains(id) ? tokenBytes[id] : []
    }

    public func isControl(_ id: Int) -> Bool {
        tokenTypes.indices.contains(id) && tokenTypes[id] == Self.controlType
    }

    public func encode(_ text: String, addBOS: Bool, parseSpecial: Bool) -> [Int] {
        var out = [Int]()
        if addBOS, let bos = specialTokens.bos { out.append(bos) }
        var scratch = Scratch()
        var text = text
        text.withUTF8 { utf8 in
            specials.split(utf8, parseSpecial: parseSpecial,
                           ordinary: { encodeOrdinary($0, &scratch, &out) }, special: { out.append($0) })
        }
        return out
    }

    // MARK: Ordinary text

    /// Buffers reused across the words of one `encode` call.
    private struct Scratch {
        var text = ScalarText()
        var symbols: [Int32] = []   // token id per symbol
        var next: [Int32] = []      // index of the next live symbol, or -1
        var prev: [Int32] = []      // index of the previous live symbol, or -1
        var heap: [UInt64] = []     // candidate merges: rank << 32 | left symbol index
        /// Words of up to 16 bytes already encoded in this call -> their ids in `cachedIDs`.
        var cache: [ShortWord: Range<Int32>] = [:]
        var cachedIDs: [Int32] = []
    }

    /// A word of at most 16 bytes packed into a hashable key (zero padded; the length tells
    /// words that differ only in trailing zero bytes apart).
    private struct ShortWord: Hashable {
        var low: UInt64 = 0, high: UInt64 = 0, length: Int = 0

        init?(_ word: UnsafeBufferPointer<UInt8>) {
            guard word.count <= 16 else { return nil }
            length = word.count
            for (i, b) in word.enumerated() {
                if i < 8 { low |= UInt64(b) << (8 * i) } else { high |= UInt64(b) << (8 * (i - 8)) }
            }
        }
    }

    /// Bounds the per-call cache (entries), so encoding a huge text keeps a few MB at most.
    private static let maxCachedWords = 50_000

    private func encodeOrdinary(_ utf8: UnsafeBufferPointer<UInt8>, _ scratch: inout Scratch, _ out: inout [Int]) {
        scratch.text.reset(utf8)
        let text = scratch.text
        preTokenizer.split(text, 0..<text.count) { word in
            let bytes = UnsafeBufferPointer(
                rebasing: utf8[text.byteOffsets[word.lowerBound]..<text.byteOffsets[word.upperBound]])
            cachedBPE(bytes, &scratch, &out)
        }
    }

    /// `bpe` through the per-call cache of short words (most words of a long text repeat).
    private func cachedBPE(_ word: UnsafeBufferPointer<UInt8>, _ s: inout Scratch, _ out: inout [Int]) {
        guard word.count > 1, let key = ShortWord(word) else { return bpe(word, &s, &out) }
        if let range = s.cache[key] {
            for i in range { out.append(Int(s.cachedIDs[Int(i)])) }
            return
        }
        let first = out.count
        bpe(word, &s, &out)
        if s.cache.count >= Self.maxCachedWords {
            s.cache.removeAll(keepingCapacity: true)
            s.cachedIDs.removeAll(keepingCapacity: true)
        }
        let start = Int32(s.cachedIDs.count)
        for id in out[first...] { s.cachedIDs.append(Int32(id)) }
        s.cache[key] = start..<Int32(s.cachedIDs.count)
    }

    /// Applies the merges to one word: a min-heap of (rank, position) candidates over a linked
    /// list of symbols; stale candidates are skipped when popped. O(n log n) in the word length.
    private func bpe(_ word: UnsafeBufferPointer<UInt8>, _ s: inout Scratch, _ out: inout [Int]) {
        s.symbols.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.heap.removeAll(keepingCapacity: true)
        // A byte with no token of its own is dropped, as llama.cpp does. Its unknown id would be a
        // control token (SmolLM2 lacks bytes 0x04, 0x13… and its unknown id is <|endoftext|>),
        // which ordinary text must never produce.
        for b in word where byteTokens[Int(b)] >= 0 { s.symbols.append(byteTokens[Int(b)]) }
        let n = s.symbols.count
        guard n > 0 else { return }
        for i in 0..<n {
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
            s.prev.append(Int32(i - 1))
        }
        if n == 1 {
            out.append(Int(s.symbols[0]))
            return
        }
        for i in 0..<(n - 1) { pushCandidate(i, &s) }
        while let top = popMin(&s.heap) {
            let rank = top >> 32, left = Int(top & 0xFFFF_FFFF)
            let right = Int(s.next[left])
            // Stale: the left symbol was absorbed, or the pair changed since it was pushed.
            guard right >= 0, s.symbols[left] >= 0,
                  let merge = merges.lookup(UInt64(UInt32(s.symbols[left])) << 32 | UInt64(UInt32(s.symbols[right]))),
                  merge >> 32 == rank else { continue }
            s.symbols[left] = Int32(merge & 0xFFFF_FFFF)
            s.symbols[right] = -1
            let after = s.next[right]
            s.next[left] = after
            if after >= 0 { s.prev[Int(after)] = Int32(left) }
            if s.prev[left] >= 0 { pushCandidate(Int(s.prev[left]), &s) }
            if after >= 0 { pushCandidate(left, &s) }
        }
        var i = 0
        while i >= 0 {
            out.append(Int(s.symbols[i]))
            i = Int(s.next[i])
        }
    }

    @inline(__always)
    private func pushCandidate(_ left: Int, _ s: inout Scratch) {
        let right = Int(s.next[left])
        guard let merge = merges.lookup(UInt64(UInt32(s.symbols[left])) << 32 | UInt64(UInt32(s.symbols[right]))) else {
            return
        }
        pushHeap(&s.heap, (merge >> 32) << 32 | UInt64(left))
    }
}

// MARK: - Merge table

/// Open-addressing hash map from a token pair to its merge, for the hot loop of `bpe` (about
/// twice as fast as `Dictionary`, whose SipHash dominated the profile). Keys are never
/// `UInt64.max` (token ids are < 2^31), which marks empty slots.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let shift: UInt64

    init(capacity: Int) {
        var bits = 4
        while (1 << bits) < 2 * max(capacity, 1) { bits += 1 }
        keys = [UInt64](repeating: .max, count: 1 << bits)
        values = [UInt64](repeating: 0, count: 1 << bits)
        shift = UInt64(64 - bits)
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// Inserts unless `key` is present (the first, lowest-rank merge of a pair wins).
    mutating func insertIfAbsent(_ key: UInt64, _ value: UInt64) {
        let mask = keys.count - 1
        var i = slot(key)
        while keys[i] != .max {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = value
    }

    @inline(__always)
    func lookup(_ key: UInt64) -> UInt64? {
        keys.withUnsafeBufferPointer { k in
            let mask = k.count - 1
            var i = slot(key)
            while true {
                let found = k[i]
                if found == key { return values.withUnsafeBufferPointer { $0[i] } }
                if found == .max { return nil }
                i = (i + 1) & mask
            }
        }
    }
}

// MARK: - Binary min-heap on UInt64

@inline(__always)
private func pushHeap(_ heap: inout [UInt64], _ value: UInt64) {
    heap.append(value)
    var i = heap.count - 1
    while i > 0 {
        let parent = (i - 1) / 2
        if heap[parent] <= value { break }
        heap[i] = heap[parent]
        i = parent
    }
    heap[i] = value
}

@inline(__always)
private func popMin(_ heap: inout [UInt64]) -> UInt64? {
    guard let last = heap.popLast() else { return nil }
    guard !heap.isEmpty else { return last }
    let top = heap[0]
    var i = 0
    let n = heap.count
    while true {
        var child = 2 * i + 1
        if child >= n { break }
        if child + 1 < n && heap[child + 1] < heap[child] { child += 1 }
        if last <= heap[child] { break }
        heap[i] = heap[child]
        i = child
    }
    heap[i] = last
    return top
}
