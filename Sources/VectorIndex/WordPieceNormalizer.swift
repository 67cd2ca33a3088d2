import Foundation

/// BERT's text clean-up and word splitting, as Hugging Face `tokenizers` does it
/// (`BertNormalizer` followed by `BertPreTokenizer`), on Unicode scalars.
///
/// Normalization, in this order (the order matters, e.g. for "İ"):
/// 1. clean text: drop U+0000, U+FFFD and control/format/unassigned/private-use scalars
///    (categories Cc, Cf, Cn, Co, Cs, except tab, LF and CR); map every whitespace to " ";
/// 2. put spaces around CJK ideographs, so each becomes its own word;
/// 3. strip accents: canonical decomposition (NFD), then drop non-spacing marks (Mn);
/// 4. lower-case each scalar on its own (full mapping, no context: "Σ" → "σ" everywhere).
///
/// Word splitting: split on whitespace (dropped), and make every punctuation scalar (ASCII
/// punctuation, which includes symbols such as `$+<=>^|~`, or Unicode category P*) a word.
public struct WordPieceNormalizer: Sendable, Equatable {
    /// Lower-case the text (uncased models).
    public var lowercase: Bool
    /// Strip accents; `nil` follows ``lowercase`` (the Hugging Face default).
    public var stripAccents: Bool?
    /// Put spaces around CJK ideographs.
    public var handleChineseChars: Bool
    /// Remove control characters and normalize whitespace.
    public var cleanText: Bool

    /// The settings of uncased BERT models such as all-MiniLM-L6-v2.
    /// - Parameters:
    ///   - lowercase: lower-case the text (default `true`).
    ///   - stripAccents: strip accents; `nil` (default) follows `lowercase`.
    ///   - handleChineseChars: split CJK ideographs (default `true`).
    ///   - cleanText: drop control characters, map whitespace to spaces (default `true`).
    public init(lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseChars: Bool = true,
                cleanText: Bool = true) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.handleChineseChars = handleChineseChars
        self.cleanText = cleanText
    }

    // MARK: Normalization

    /// Normalizes `text` (steps 1–4 above).
    /// - Parameter text: raw text.
    /// - Returns: the normalized scalars.
    public func normalize(_ text: String) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.utf8.count)
        var allASCII = true
        for c in text.unicodeScalars {
            if c.value >= 32 && c.value < 127 {  // fast path: printable ASCII is kept as is
                scalars.append(c)
                continue
            }
            allASCII = allASCII && c.isASCII
            if cleanText {
                if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
                if Self.isWhitespace(c) { scalars.append(" "); continue }
            }
            if handleChineseChars && Self.isChineseChar(c) {
                scalars.append(" "); scalars.append(c); scalars.append(" ")
            } else {
                scalars.append(c)
            }
        }
        if (stripAccents ?? lowercase) && !allASCII {  // NFD leaves ASCII unchanged
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars)
            scalars = String(s).decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(scalars.count)
            for c in scalars {
                if c.isASCII {
                    lowered.append(c.value >= 65 && c.value <= 90 ? Unicode.Scalar(c.value + 32)! : c)
                } else {
                    lowered.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
                }
            }
            scalars = lowered
        }
        return scalars
    }

    // MARK: Word splitting

    /// Normalizes `text` and splits it into words and single punctuation marks.
    /// - Parameter text: raw text.
    /// - Returns: the words, each a non-empty scalar array.
    public func words(_ text: String) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in normalize(text) {
            if Self.isSplitWhitespace(c) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
            } else if Self.isPunctuation(c) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
                words.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    // MARK: Character classes

    /// Whitespace for clean-up: tab, LF, CR and every scalar with the White_Space property.
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == "\t" || c == "\n" || c == "\r" || c.properties.isWhitespace
    }

    /// Whitespace for word splitting (White_Space property, which includes tab, LF and CR).
    static func isSplitWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c.properties.isWhitespace
    }

    /// "Other" categories (Cc, Cf, Cn, Co, Cs), except tab, LF and CR which count as whitespace.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII punctuation (`!"#$%&'()*+,-./:;<=>?@[\]^_` `{|}~`) or Unicode category P*.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// CJK ideograph blocks, exactly as `tokenizers` lists them (including its 0x2B920 start
    /// of Extension E, which differs from Google's BERT).
    static func isChineseChar(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
