import Foundation

/// Turns a generated NER answer into entity spans of the sentence.
///
/// The parse rule:
/// 1. The answer is split into lines, and each line at `;`.
/// 2. Each piece is trimmed of spaces, a list marker (`-`, `*`, `•`, `1.`, `1)`), surrounding
///    quotes and a final period; empty pieces and `none` (any case) are skipped.
/// 3. A piece that matches a token span of the sentence is one mention. Otherwise, if it has a
///    colon, the text after the last colon is tried ("Chemicals: aspirin"); otherwise it is split
///    at commas and each part is tried ("aspirin, ibuprofen").
/// 4. Matching ignores case and whitespace: a mention matches tokens `i..<j` when the tokens
///    joined without spaces equal the mention without spaces ("22-oxacalcitriol" matches the
///    tokens `22 - oxacalcitriol`). Every occurrence in the sentence becomes a predicted span of
///    the prompt's entity type.
/// 5. A mention that matches nowhere counts as one false positive; repeated mentions count once.
public enum MentionParser {
    /// The result of parsing one answer.
    public struct Parsed: Sendable, Equatable {
        /// Predicted spans (sorted, distinct).
        public var spans: [EntitySpan]
        /// Mentions found nowhere in the sentence, as written (distinct up to case and spaces).
        public var unmatched: [String]
    }

    /// Parses `answer` against `tokens`; spans get `type`.
    public static func parse(_ answer: String, tokens: [String], type: String) -> Parsed {
        let normTokens = tokens.map(normalize)
        var spans = Set<EntitySpan>(), unmatched: [String] = [], seenUnmatched = Set<String>()
        func record(_ mention: String) -> Bool {
            let ranges = locate(normalize(mention), in: normTokens)
            for r in ranges { spans.insert(EntitySpan(start: r.lowerBound, end: r.upperBound, type: type)) }
            return !ranges.isEmpty
        }
        func miss(_ mention: String) {
            let key = normalize(mention)
            if !key.isEmpty, seenUnmatched.insert(key).inserted { unmatched.append(mention) }
        }
        for line in answer.split(whereSeparator: { $0 == "\n" || $0 == ";" }) {
            let piece = clean(String(line))
            if piece.isEmpty || piece.lowercased() == "none" { continue }
            if record(piece) { continue }
            if let colon = piece.lastIndex(of: ":") {
                let rest = clean(String(piece[piece.index(after: colon)...]))
                if rest.isEmpty || rest.lowercased() == "none" { continue }
                if record(rest) { continue }
                for part in rest.split(separator: ",").map({ clean(String($0)) }) where !part.isEmpty && !record(part) { miss(part) }
                continue
            }
            let parts = piece.split(separator: ",").map { clean(String($0)) }.filter { !$0.isEmpty }
            if parts.count < 2 { miss(piece); continue }
            for part in parts where part.lowercased() != "none" && !record(part) { miss(part) }
        }
        return Parsed(spans: spans.sorted(), unmatched: unmatched)
    }

    /// Every token range whose tokens, joined without spaces, equal `mention` (both normalized).
    public static func locate(_ mention: String, in tokens: [String]) -> [Range<Int>] {
        guard !mention.isEmpty else { return [] }
        var out: [Range<Int>] = []
        for i in tokens.indices {
            var joined = ""
            for j in i..<tokens.count {
                joined += tokens[j]
                if joined.count > mention.count || !mention.hasPrefix(joined) { break }
                if joined.count == mention.count { out.append(i..<(j + 1)); break }
            }
        }
        return out
    }

    /// Lowercased with every whitespace character removed.
    static func normalize(_ s: String) -> String {
        String(s.lowercased().filter { !$0.isWhitespace })
    }

    /// Trims spaces, a leading list marker, surrounding quotes and a final period.
    static func clean(_ raw: String) -> String {
        var s = raw.trimmingCharacters(in: .whitespaces)
        for marker in ["- ", "* ", "• "] where s.hasPrefix(marker) { s = String(s.dropFirst(marker.count)) }
        // "1. " / "12) "
        if let r = s.range(of: #"^\d{1,3}[.)]\s+"#, options: .regularExpression) { s = String(s[r.upperBound...]) }
        s = s.trimmingCharacters(in: .whitespaces)
        let quotes: Set<Character> = ["\"", "'", "`", "“", "”", "‘", "’"]
        while let f = s.first, quotes.contains(f) { s.removeFirst() }
        while let l = s.last, quotes.contains(l) { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s.trimmingCharacters(in: .whitespaces)
    }
}
