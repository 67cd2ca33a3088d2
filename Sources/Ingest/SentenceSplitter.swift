/// A rule-based sentence splitter tuned for biomedical abstracts.
///
/// It works on the text's Unicode scalars in one forward pass (no regex, no Foundation), because it
/// runs over every abstract of a corpus (tens of megabytes). Offsets are Unicode-scalar offsets,
/// the unit of ``Document/text`` offsets.
///
/// A sentence ends
/// - at every line break (`"\n"`, `"\r"`, U+2028, U+2029): paragraphs and single lines both end one;
/// - after `.`, `?` or `!` (plus any closing quotes or brackets) followed by white space and then a
///   sentence start: an upper-case letter, a digit, an opening quote or bracket, a Greek letter
///   ("α-Synuclein …") or a mixed-case word ("mRNA", "pH", "siRNA").
///
/// A `.` does *not* end a sentence when it
/// - is part of a number ("3.5 mg", "p < 0.05") — there is no white space after it;
/// - is part of an ellipsis ("..."), which never ends a sentence;
/// - ends an abbreviation that never closes a sentence ("e.g.", "i.e.", "vs.", "Fig.", "Ref.",
///   "approx.", "ca.", "Dr.", "St.", "cf.", months like "Jan.", and "No." before a number);
/// - ends an initial ("J. K. Smith", "A. thaliana", "E. coli", "U.S.") or an abbreviation that may
///   close a sentence ("et al.", "etc.", "spp.", "resp."), unless the next word is a common
///   sentence opener ("The", "We", "In", …): "… by Smith et al. These results …" is split there.
///
/// Structured-abstract labels ("METHODS: We …") contain no terminator, so they stay in their
/// sentence. Returned ranges are trimmed of surrounding white space and, together, cover every
/// non-space scalar of the text.
public struct SentenceSplitter: Sendable {
    public init() {}

    /// Splits `text` into sentences.
    /// - Parameter text: Any text; an empty or all-space text gives no sentences.
    /// - Returns: Sentence ranges in Unicode-scalar offsets into `text`, in order, non-overlapping.
    public func split(_ text: String) -> [Range<Int>] {
        split(scalars: Array(text.unicodeScalars))
    }

    /// Splits text given as its Unicode scalars (what ``Chunker`` uses, to convert only once).
    /// - Parameter s: The text's scalars.
    /// - Returns: Sentence ranges as offsets into `s`, trimmed of white space.
    public func split(scalars s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(s.count / 80 + 1)
        let n = s.count
        var sentenceStart = 0
        var i = 0
        while i < n {
            let c = s[i]
            if Self.isNewline(c) {
                Self.appendTrimmed(sentenceStart..<i, of: s, to: &out)
                sentenceStart = i + 1
                i += 1
                continue
            }
            guard c == "." || c == "?" || c == "!" else { i += 1; continue }

            // The terminator cluster: "." / "?!" / "...", then closing quotes and brackets.
            var j = i + 1
            var dots = c == "." ? 1 : 0
            var strong = c != "."
            while j < n, s[j] == "." || s[j] == "?" || s[j] == "!" {
                if s[j] == "." { dots += 1 } else { strong = true }
                j += 1
            }
            while j < n, Self.isClosing(s[j]) { j += 1 }
            // A break needs white space after the cluster ("3.5", "e.g.," never break).
            guard j < n, Self.isSpace(s[j]) else { i = j; continue }
            var k = j
            while k < n, Self.isSpace(s[k]), !Self.isNewline(s[k]) { k += 1 }
            // End of text or a line break: the main loop closes the sentence there.
            guard k < n, !Self.isNewline(s[k]) else { i = k; continue }

            let breaks = Self.startsSentence(s, at: k)
                && (strong || (dots == 1 && !Self.periodIsInternal(s, dot: i, lowerBound: sentenceStart, next: k)))
            if breaks {
                Self.appendTrimmed(sentenceStart..<j, of: s, to: &out)
                sentenceStart = k
            }
            i = k
        }
        Self.appendTrimmed(sentenceStart..<n, of: s, to: &out)
        return out
    }
}

// MARK: - Character classes

extension SentenceSplitter {
    /// White space, including line breaks and no-break spaces.
    @inline(__always)
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return c.properties.isWhitespace
    }

    /// Line and paragraph breaks; each one ends a sentence.
    @inline(__always)
    static func isNewline(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029: return true
        default: return false
        }
    }

    /// Closing quotes and brackets that may follow a terminator: `."`, `?)`, `.”`.
    @inline(__always)
    static func isClosing(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "\"", "'", ")", "]", "}", "\u{201D}", "\u{2019}", "\u{00BB}": return true
        default: return false
        }
    }

    /// Opening quotes and brackets that may start a sentence (or an abbreviated token).
    @inline(__always)
    static func isOpening(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "\"", "'", "(", "[", "{", "\u{201C}", "\u{2018}", "\u{00AB}": return true
        default: return false
        }
    }

    @inline(__always)
    static func isUpper(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v >= 0x41 && v <= 0x5A }
        return c.properties.isUppercase
    }

    @inline(__always)
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        return c.properties.isAlphabetic
    }

    @inline(__always)
    static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }

    /// Whether the scalar at `k` can start a sentence: upper case, digit, opening quote/bracket,
    /// a Greek letter ("α-Synuclein"), or a lower-case word with a capital early on ("mRNA", "pH").
    static func startsSentence(_ s: [Unicode.Scalar], at k: Int) -> Bool {
        let c = s[k]
        if isUpper(c) || isDigit(c) || isOpening(c) { return true }
        if c.value >= 0x0370 && c.value <= 0x03FF { return true }
        var p = k + 1
        while p < s.count, p <= k + 3, isLetter(s[p]) {
            if isUpper(s[p]) { return true }
            p += 1
        }
        return false
    }
}

// MARK: - Abbreviations and initials

extension SentenceSplitter {
    /// Abbreviations (lower-cased, without the final dot) that never end a sentence.
    static let neverFinal: Set<String> = [
        "e.g", "i.e", "vs", "fig", "figs", "ref", "refs", "approx", "ca", "dr", "st", "cf", "mr", "mrs",
        "ms", "prof", "eq", "eqs", "viz", "incl", "esp", "suppl", "vol", "pp", "sect", "ch", "tab",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    ]

    /// Abbreviations that never end a sentence when a number follows ("No. 5").
    static let beforeNumber: Set<String> = ["no", "nos"]

    /// Abbreviations that may end a sentence: they split only before a common sentence opener.
    static let maybeFinal: Set<String> = [
        "al", "etc", "resp", "sp", "spp", "subsp", "var", "inc", "ltd", "co", "corp", "jr", "sr",
    ]

    /// Capitalized words that start sentences far more often than they follow an abbreviation or
    /// an initial; they let "et al. These …" or "hepatitis B. The …" split.
    static let openers: Set<String> = [
        "The", "This", "These", "That", "Those", "There", "Then", "Thus", "Therefore", "Here",
        "However", "Moreover", "Furthermore", "Further", "Finally", "Although", "Our", "We", "It",
        "Its", "In", "An", "As", "At", "After", "All", "Both", "By", "Each", "For", "From", "No",
        "Of", "On", "To", "Using", "With", "When", "While", "Since", "Such", "Overall", "Taken",
        "Results", "Conclusion", "Conclusions", "Methods", "Background", "Objective", "Patients",
    ]

    /// Whether the single `.` at `dot` belongs to an abbreviation or initial rather than ending a
    /// sentence. `next` is the first scalar of the following word.
    static func periodIsInternal(_ s: [Unicode.Scalar], dot: Int, lowerBound: Int, next: Int) -> Bool {
        // The token before the dot: back to white space or an opening bracket ("(e.g.").
        var p = dot
        while p > lowerBound, !isSpace(s[p - 1]), !isOpening(s[p - 1]) { p -= 1 }
        let length = dot - p
        guard length > 0, length <= 12 else { return false }

        if length == 1 {
            // "J. K. Smith", "A. thaliana": a single capital is an initial.
            return isUpper(s[p]) && !isOpener(s, at: next)
        }
        guard let token = asciiLowercased(s[p..<dot]) else { return false }
        if neverFinal.contains(token) { return true }
        if beforeNumber.contains(token) { return isDigit(s[next]) }
        if maybeFinal.contains(token) || isDottedInitials(token) { return !isOpener(s, at: next) }
        return false
    }

    /// "u.s", "a.m", "e.g": single letters joined by dots.
    static func isDottedInitials(_ token: String) -> Bool {
        var letters = 0
        var previousWasLetter = false
        for u in token.utf8 {
            if u == UInt8(ascii: ".") {
                guard previousWasLetter else { return false }
                previousWasLetter = false
            } else {
                guard !previousWasLetter else { return false }
                previousWasLetter = true
                letters += 1
            }
        }
        return letters >= 2 && previousWasLetter
    }

    /// The token lower-cased, or nil when it has anything but ASCII letters and dots.
    static func asciiLowercased(_ scalars: ArraySlice<Unicode.Scalar>) -> String? {
        var out = ""
        for c in scalars {
            let v = c.value
            if v == 0x2E { out.unicodeScalars.append(c); continue }
            guard v < 0x80, isLetter(c) else { return nil }
            out.unicodeScalars.append(Unicode.Scalar(UInt8(v | 0x20)))
        }
        return out
    }

    /// Whether the word starting at `k` is one of ``openers`` (followed by a non-letter).
    static func isOpener(_ s: [Unicode.Scalar], at k: Int) -> Bool {
        var e = k
        while e < s.count, e - k <= 12, isLetter(s[e]) { e += 1 }
        guard e > k + 1, e - k <= 12 else { return false }
        var word = ""
        word.unicodeScalars.append(contentsOf: s[k..<e])
        return openers.contains(word)
    }
}

// MARK: - Output

extension SentenceSplitter {
    /// Appends `range` without its leading and trailing white space, unless nothing is left.
    @inline(__always)
    static func appendTrimmed(_ range: Range<Int>, of s: [Unicode.Scalar], to out: inout [Range<Int>]) {
        var a = range.lowerBound
        var b = range.upperBound
        while a < b, isSpace(s[a]) { a += 1 }
        while b > a, isSpace(s[b - 1]) { b -= 1 }
        if a < b { out.append(a..<b) }
    }
}
