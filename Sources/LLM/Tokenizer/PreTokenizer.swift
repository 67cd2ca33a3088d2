/// How text is cut into words before BPE, chosen by `tokenizer.ggml.pre`. Written out by hand
/// (no regex engine): the rules are those of the regexes llama.cpp and Hugging Face use.
///
/// - `gpt2`: GPT-2's byte-level split
///   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
///   (contractions are case-sensitive; `\s` is Unicode White_Space; ` ?` is U+0020 only).
/// - `isolatedDigits`: first every `\p{N}` character becomes a word of its own, then the GPT-2
///   split runs on the text between them (its look-ahead stops at each digit). This is
///   `tokenizer.ggml.pre = "smollm"` (SmolLM/SmolLM2, and StarCoder, Refact, Command-R ... in
///   llama.cpp); it equals Hugging Face's `Sequence[Digits(individual_digits=true), ByteLevel]`
///   from SmolLM2's `tokenizer.json`.
/// - `qwen2`: the Qwen2 split (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`, Hugging Face's
///   `Split` regex in Qwen2.5's `tokenizer.json`)
///   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:
///   one leading non-letter (a space, a tab, punctuation) joins the letters after it, every digit
///   is a word, punctuation keeps the line breaks after it, and a run of whitespace ends at its
///   last line break.
public enum PreTokenizer: String, Sendable, CaseIterable {
    case gpt2
    case isolatedDigits
    case qwen2

    /// `tokenizer.ggml.pre` names handled, and the split each uses.
    static let names: [String: PreTokenizer] = [
        "gpt2": .gpt2, "gpt-2": .gpt2,
        "smollm": .isolatedDigits, "starcoder": .isolatedDigits, "refact": .isolatedDigits,
        "command-r": .isolatedDigits, "codeshell": .isolatedDigits, "exaone": .isolatedDigits,
        "minerva-7b": .isolatedDigits,
        "qwen2": .qwen2, "deepseek-r1-qwen": .qwen2,
    ]
    static var supportedNames: [String] { names.keys.sorted() }

    /// - Parameter name: the value of `tokenizer.ggml.pre`.
    /// - Throws: `TokenizerError.unsupportedPreTokenizer` for names whose rules are not implemented.
    public init(ggmlName name: String) throws {
        guard let p = Self.names[name] else { throw TokenizerError.unsupportedPreTokenizer(name) }
        self = p
    }

    /// Splits `text` (scalars `range`) into words, calling `emit` with each word's scalar range.
    func split(_ text: ScalarText, _ range: Range<Int>, emit: (Range<Int>) -> Void) {
        switch self {
        case .gpt2:
            gpt2Split(text, range, emit: emit)
        case .isolatedDigits:
            var start = range.lowerBound
            for i in range where text.classes[i] == .number {
                if start < i { gpt2Split(text, start..<i, emit: emit) }
                emit(i..<(i + 1))
                start = i + 1
            }
            if start < range.upperBound { gpt2Split(text, start..<range.upperBound, emit: emit) }
        case .qwen2:
            qwen2Split(text, range, emit: emit)
        }
    }

    /// The GPT-2 regex, alternative by alternative, on scalars `range` (the end of the range is
    /// the end of text for the look-ahead).
    private func gpt2Split(_ text: ScalarText, _ range: Range<Int>, emit: (Range<Int>) -> Void) {
        let end = range.upperBound
        text.values.withUnsafeBufferPointer { values in
            text.classes.withUnsafeBufferPointer { classes in
                var pos = range.lowerBound
                /// End of the run of scalars of class `c` starting at `from`.
                func run(_ c: CharClass, from: Int) -> Int {
                    var e = from
                    while e < end && classes[e] == c { e += 1 }
                    return e
                }
                while pos < end {
                    let c = values[pos]
                    // 's 't 're 've 'm 'll 'd
                    if c == 0x27 && pos + 1 < end {
                        let n = values[pos + 1]
                        if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 {  // s t m d
                            emit(pos..<(pos + 2)); pos += 2; continue
                        }
                        if pos + 2 < end {
                            let n2 = values[pos + 2]
                            if (n == 0x72 && n2 == 0x65) || (n == 0x76 && n2 == 0x65) || (n == 0x6C && n2 == 0x6C) {
                                emit(pos..<(pos + 3)); pos += 3; continue  // re ve ll
                            }
                        }
                    }
                    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
                    let body = (c == 0x20 && pos + 1 < end) ? pos + 1 : pos
                    let cls = classes[body]
                    if cls != .whitespace {
                        let e = run(cls, from: body)
                        emit(pos..<e); pos = e; continue
                    }
                    // `\s+(?!\S)` leaves the last space of a run for the next word; `\s+` otherwise.
                    var e = run(.whitespace, from: pos)
                    if e < end && e - pos > 1 { e -= 1 }
                    emit(pos..<e); pos = e
                }
            }
        }
    }
}

extension PreTokenizer {
    /// The Qwen2 regex (see the type's documentation), alternative by alternative, on scalars
    /// `range` (the end of the range is the end of text for the look-ahead).
    private func qwen2Split(_ text: ScalarText, _ range: Range<Int>, emit: (Range<Int>) -> Void) {
        let end = range.upperBound
        text.values.withUnsafeBufferPointer { values in
            text.classes.withUnsafeBufferPointer { classes in
                /// End of the run of scalars of class `c` starting at `from`.
                func run(_ c: CharClass, from: Int) -> Int {
                    var e = from
                    while e < end && classes[e] == c { e += 1 }
                    return e
                }
                func isLineBreak(_ i: Int) -> Bool { values[i] == 0x0A || values[i] == 0x0D }
                /// ASCII lower case of scalar `i` (for the case-insensitive contractions).
                func lower(_ i: Int) -> UInt32 { values[i] >= 0x41 && values[i] <= 0x5A ? values[i] | 0x20 : values[i] }
                var pos = range.lowerBound
                while pos < end {
                    let cls = classes[pos]
                    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                    if values[pos] == 0x27 && pos + 1 < end {
                        let n = lower(pos + 1)
                        if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 {  // s t m d
                            emit(pos..<(pos + 2)); pos += 2; continue
                        }
                        if pos + 2 < end {
                            let n2 = lower(pos + 2)
                            if (n == 0x72 && n2 == 0x65) || (n == 0x76 && n2 == 0x65) || (n == 0x6C && n2 == 0x6C) {
                                emit(pos..<(pos + 3)); pos += 3; continue  // re ve ll
                            }
                        }
                    }
                    // [^\r\n\p{L}\p{N}]?\p{L}+
                    if cls == .letter {
                        let e = run(.letter, from: pos); emit(pos..<e); pos = e; continue
                    }
                    if cls != .number && !isLineBreak(pos) && pos + 1 < end && classes[pos + 1] == .letter {
                        let e = run(.letter, from: pos + 1); emit(pos..<e); pos = e; continue
                    }
                    // \p{N}
                    if cls == .number { emit(pos..<(pos + 1)); pos += 1; continue }
                    //  ?[^\s\p{L}\p{N}]+[\r\n]*
                    let body = (values[pos] == 0x20 && pos + 1 < end) ? pos + 1 : pos
                    if classes[body] == .other {
                        var e = run(.other, from: body)
                        while e < end && isLineBreak(e) { e += 1 }
                        emit(pos..<e); pos = e; continue
                    }
                    // Whitespace: \s*[\r\n]+ ends the word at the run's last line break; else
                    // \s+(?!\S) leaves the run's last space for the next word, and \s+ takes one.
                    let runEnd = run(.whitespace, from: pos)
                    var e = runEnd
                    while e > pos && !isLineBreak(e - 1) { e -= 1 }
                    if e == pos {
                        e = runEnd
                        if e < end && e - pos > 1 { e -= 1 }
                    }
                    emit(pos..<e); pos = e
                }
            }
        }
    }
}

/// The classes the split rules distinguish.
enum CharClass: UInt8 {
    case other = 0, letter, number, whitespace

    private static let ascii: [CharClass] = (0..<128).map { i in
        switch UInt8(i) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case 0x09...0x0D, 0x20: return .whitespace
        default: return .other
        }
    }

    /// `\p{L}` = L*, `\p{N}` = N*, whitespace = the Unicode White_Space property.
    static func of(_ value: UInt32) -> CharClass {
        if value < 128 { return ascii[Int(value)] }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }
}

/// The scalars of a UTF-8 text with their classes and byte offsets (`byteOffsets` has one entry
/// more than `values`: the end).
struct ScalarText {
    var values: [UInt32] = []
    var classes: [CharClass] = []
    var byteOffsets: [Int] = []

    var count: Int { values.count }

    /// Decodes valid UTF-8 (as every Swift `String` holds).
    mutating func reset(_ bytes: UnsafeBufferPointer<UInt8>) {
        values.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        byteOffsets.removeAll(keepingCapacity: true)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            var value: UInt32
            var length: Int
            if b0 < 0x80 {
                value = b0; length = 1
            } else if b0 < 0xE0 {
                value = b0 & 0x1F; length = 2
            } else if b0 < 0xF0 {
                value = b0 & 0x0F; length = 3
            } else {
                value = b0 & 0x07; length = 4
            }
            length = min(length, n - i)
            for k in 1..<max(length, 1) { value = (value << 6) | (UInt32(bytes[i + k]) & 0x3F) }
            values.append(value)
            classes.append(CharClass.of(value))
            byteOffsets.append(i)
            i += length
        }
        byteOffsets.append(n)
    }
}
