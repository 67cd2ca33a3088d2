/// Finds control and user-defined tokens written in text, before the ordinary text is split
/// into pieces (llama.cpp's `tokenizer_st_partition`): user-defined tokens always, control tokens
/// only when asked (`parseSpecial`). At each byte the longest matching token wins.
///
/// Candidates are bucketed by their first two bytes, control and user-defined apart: Gemma 3 has
/// 6,249 control tokens, 6,000 of them starting "<unused", so a bucket per first byte made every
/// "<" of an XML text scan thousands of candidates.
struct SpecialTokenMatcher: Sendable {
    typealias Candidate = (bytes: [UInt8], id: Int)

    /// Candidates of two or more bytes, longest first: `buckets[index[(b0 << 8) | b1]]`, with
    /// separate lists for user-defined (`.0`) and control (`.1`) tokens; index -1 when none.
    private let index: [Int32]  // (65536)
    private let buckets: [(user: [Candidate], control: [Candidate])]
    /// One-byte tokens by byte: (id, control), id -1 when none.
    private let single: [(id: Int32, control: Bool)]  // (256)
    /// Whether any special token starts with this byte (the common fast path says no).
    private let startsAny: [Bool]  // (256)

    /// Token type values of `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`).
    static let normalType = 1, unknownType = 2, controlType = 3, userDefinedType = 4, unusedType = 5, byteType = 6

    /// - Parameters:
    ///   - tokenTypes: `tokenizer.ggml.token_type` per id.
    ///   - text: the UTF-8 text of token `id` as written in prompts.
    init(tokenTypes: [Int], text: (Int) -> [UInt8]) {
        var index = [Int32](repeating: -1, count: 65536)
        var buckets = [(user: [Candidate], control: [Candidate])]()
        var single = [(id: Int32, control: Bool)](repeating: (-1, false), count: 256)
        var startsAny = [Bool](repeating: false, count: 256)
        for (id, type) in tokenTypes.enumerated() where type == Self.controlType || type == Self.userDefinedType {
            let bytes = text(id), control = type == Self.controlType
            guard let first = bytes.first else { continue }
            startsAny[Int(first)] = true
            if bytes.count == 1 {
                if single[Int(first)].id < 0 { single[Int(first)] = (Int32(id), control) }
                continue
            }
            let key = Int(first) << 8 | Int(bytes[1])
            if index[key] < 0 {
                index[key] = Int32(buckets.count)
                buckets.append(([], []))
            }
            if control {
                buckets[Int(index[key])].control.append((bytes, id))
            } else {
                buckets[Int(index[key])].user.append((bytes, id))
            }
        }
        for i in buckets.indices {
            buckets[i].user.sort { $0.bytes.count > $1.bytes.count }
            buckets[i].control.sort { $0.bytes.count > $1.bytes.count }
        }
        self.index = index
        self.buckets = buckets
        self.single = single
        self.startsAny = startsAny
    }

    /// The longest special token starting at byte `i`, as (length in bytes, id).
    @inline(__always)
    func match(at i: Int, in utf8: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> (length: Int, id: Int)? {
        let b0 = Int(utf8[i])
        guard startsAny[b0] else { return nil }
        if i + 1 < utf8.count, case let bucket = index[b0 << 8 | Int(utf8[i + 1])], bucket >= 0 {
            let user = Self.longest(buckets[Int(bucket)].user, at: i, in: utf8)
            let control = parseSpecial ? Self.longest(buckets[Int(bucket)].control, at: i, in: utf8) : nil
            switch (user, control) {
            case let (u?, c?): return u.length >= c.length ? u : c
            case let (u?, nil): return u
            case let (nil, c?): return c
            case (nil, nil): break
            }
        }
        let s = single[b0]
        if s.id >= 0 && (parseSpecial || !s.control) { return (1, Int(s.id)) }
        return nil
    }

    /// The first (longest) of `candidates` that the text at `i` starts with.
    @inline(__always)
    private static func longest(_ candidates: [Candidate], at i: Int, in utf8: UnsafeBufferPointer<UInt8>) -> (length: Int, id: Int)? {
        for c in candidates where c.bytes.count <= utf8.count - i {
            var equal = true
            for k in 2..<c.bytes.count where utf8[i + k] != c.bytes[k] {
                equal = false
                break
            }
            if equal { return (c.bytes.count, c.id) }
        }
        return nil
    }

    /// Cuts `utf8` at the special tokens it contains.
    ///
    /// - Parameters:
    ///   - ordinary: called with each stretch of ordinary text between special tokens (never empty).
    ///   - special: called with the id of each special token, in order.
    func split(_ utf8: UnsafeBufferPointer<UInt8>, parseSpecial: Bool,
               ordinary: (UnsafeBufferPointer<UInt8>) -> Void, special: (Int) -> Void) {
        var start = 0
        var i = 0
        while i < utf8.count {
            if let (length, id) = match(at: i, in: utf8, parseSpecial: parseSpecial) {
                if start < i { ordinary(UnsafeBufferPointer(rebasing: utf8[start..<i])) }
                special(id)
                i += length
                start = i
            } else {
                i += 1
            }
        }
        if start < utf8.count { ordinary(UnsafeBufferPointer(rebasing: utf8[start...])) }
    }
}
