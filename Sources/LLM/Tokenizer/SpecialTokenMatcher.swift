/// Finds control and user-defined tokens written in text, before the ordinary text is split
/// into pieces (llama.cpp's `tokenizer_st_partition`): user-defined tokens always, control tokens
/// only when asked (`parseSpecial`). At each byte the longest matching token wins.
struct SpecialTokenMatcher: Sendable {
    /// Candidates by first byte, longest first.
    private let byFirstByte: [[(bytes: [UInt8], id: Int, control: Bool)]]

    /// Token type values of `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`).
    static let normalType = 1, unknownType = 2, controlType = 3, userDefinedType = 4, unusedType = 5, byteType = 6

    /// - Parameters:
    ///   - tokenTypes: `tokenizer.ggml.token_type` per id.
    ///   - text: the UTF-8 text of token `id` as written in prompts.
    init(tokenTypes: [Int], text: (Int) -> [UInt8]) {
        var table = [[(bytes: [UInt8], id: Int, control: Bool)]](repeating: [], count: 256)
        for (id, type) in tokenTypes.enumerated() where type == Self.controlType || type == Self.userDefinedType {
            let bytes = text(id)
            guard let first = bytes.first else { continue }
            table[Int(first)].append((bytes, id, type == Self.controlType))
        }
        for i in 0..<256 { table[i].sort { $0.bytes.count > $1.bytes.count } }
        byFirstByte = table
    }

    /// The longest special token starting at byte `i`, as (length in bytes, id).
    @inline(__always)
    func match(at i: Int, in utf8: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> (length: Int, id: Int)? {
        let candidates = byFirstByte[Int(utf8[i])]
        if candidates.isEmpty { return nil }
        for c in candidates where (parseSpecial || !c.control) && c.bytes.count <= utf8.count - i {
            var match = true
            for k in 1..<c.bytes.count where utf8[i + k] != c.bytes[k] {
                match = false
                break
            }
            if match { return (c.bytes.count, c.id) }
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
