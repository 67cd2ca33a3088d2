/// Turns a stream of token ids into text as it is generated, holding back the bytes of a
/// multi-byte UTF-8 character until its last byte arrives (byte-level tokens often cut
/// characters such as "🧬" or "日" across tokens).
///
/// ```swift
/// var decoder = StreamingDecoder(tokenizer: tokenizer)
/// for id in generated { print(decoder.append(id), terminator: "") }
/// print(decoder.finish())
/// ```
public struct StreamingDecoder: Sendable {
    public let tokenizer: any Tokenizer
    /// Leave control tokens out of the text.
    public var skipSpecial: Bool
    /// Bytes of a character still incomplete (at most 3).
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Adds one token.
    /// - Returns: the text completed by it: possibly empty while a character is still incomplete.
    public mutating func append(_ id: Int) -> String {
        if skipSpecial && tokenizer.isControl(id) { return "" }
        pending.append(contentsOf: tokenizer.bytes(of: id))
        let complete = Self.completePrefixLength(pending)
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Flushes what is held back; a character that never completed becomes U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Whether bytes are being held back.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// The length of the longest prefix of `bytes` that does not end inside a character that
    /// could still be completed. Invalid bytes are not held back (they decode to U+FFFD).
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // Look back at most 3 bytes for the lead byte of the last character.
        var i = n - 1
        while i >= 0 && i >= n - 4 {
            let b = bytes[i]
            if b & 0xC0 != 0x80 {  // not a continuation byte: an ASCII or lead byte
                let length: Int
                switch b {
                case 0xC2...0xDF: length = 2
                case 0xE0...0xEF: length = 3
                case 0xF0...0xF4: length = 4
                default: return n  // ASCII or an invalid lead byte: nothing to wait for
                }
                return n - i < length ? i : n
            }
            i -= 1
        }
        return n
    }
}
