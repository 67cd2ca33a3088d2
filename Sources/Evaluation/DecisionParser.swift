import Foundation

/// The yes / no / maybe a free-text answer commits to (PubMedQA-style questions answered in
/// prose, as `selfspec ask` answers them).
///
/// The rule, first match wins; the text is read with citation marks (`[1]`, `[PMID 123]`),
/// Markdown emphasis and a leading `Answer:` removed, in lower case:
/// 1. **Explicit.** The answer's first word is `yes`, `no` or `maybe`, or it says "the answer is
///    yes/no/maybe" anywhere. (`explicit` is true.)
/// 2. **No answer.** The first two sentences say the passages or the model cannot answer
///    ("the passages do not provide…", "not mentioned", "cannot be determined", "I'm sorry"):
///    ``Decision/unclear``.
/// 3. **Hedged.** The first sentence hedges ("unclear", "inconclusive", "may or may not",
///    "conflicting", "controversial", "not clear", "remains to be"): ``Decision/maybe``.
/// 4. **Negated.** The first sentence has a negation (`not`, `no`, `never`, `cannot`,
///    `neither`, `nor`, `none`, a word ending in `n't`, "failed to", "lack of"): ``Decision/no``.
/// 5. **Affirmed.** The first sentence shares at least half of the question's content words
///    (words of 4+ letters, not stop words; the question's own negations excluded), so it
///    restates the question as a claim: ``Decision/yes``.
/// 6. Otherwise ``Decision/unclear``: the answer does not commit.
///
/// Rules 3-5 read a declarative answer ("Statins reduce … [1]."), as small models rarely start
/// with "Yes"; they are cues, not understanding, which is why `explicit` is reported apart.
public enum DecisionParser {
    public enum Decision: String, Sendable, Codable, CaseIterable {
        case yes, no, maybe, unclear

        /// The index in `EvalDataLoader.pubmedQALabels`, nil for `unclear`.
        public var labelIndex: Int? { EvalDataLoader.pubmedQALabels.firstIndex(of: rawValue) }
    }

    public struct Parsed: Sendable, Equatable {
        public var decision: Decision
        /// Whether the answer names the label itself (rule 1).
        public var explicit: Bool
    }

    /// The decision `answer` commits to for `question`.
    public static func parse(_ answer: String, question: String) -> Parsed {
        let text = clean(answer)
        let words = tokens(text)
        if let first = words.first, let d = Decision(rawValue: first), d != .unclear { return Parsed(decision: d, explicit: true) }
        if let said = capture(#"\banswer (?:is|would be)[: ]+\"?(yes|no|maybe)\b"#, in: text), let d = Decision(rawValue: said) {
            return Parsed(decision: d, explicit: true)
        }
        let sentences = splitSentences(text)
        let opening = sentences.prefix(2).joined(separator: " ")
        if noAnswer.contains(where: { opening.contains($0) }) { return Parsed(decision: .unclear, explicit: false) }
        let first = sentences.first ?? ""
        if hedges.contains(where: { first.contains($0) }) { return Parsed(decision: .maybe, explicit: false) }
        let firstWords = tokens(first)
        if firstWords.contains(where: isNegation) || first.contains("failed to") || first.contains("lack of") {
            return Parsed(decision: .no, explicit: false)
        }
        let asked = Set(tokens(clean(question)).filter(isContentWord).map(stem))
        if !asked.isEmpty, 2 * asked.intersection(firstWords.map(stem)).count >= asked.count {
            return Parsed(decision: .yes, explicit: false)
        }
        return Parsed(decision: .unclear, explicit: false)
    }

    /// Whether `question` asks yes or no: it ends with "?" and its last clause (after the last
    /// ". ", ": " or "; ") starts with an auxiliary verb ("Does …?", "Title: is it mandatory?",
    /// "Is 2.5 mg safe?").
    public static func isYesNoQuestion(_ question: String) -> Bool {
        let q = question.trimmingCharacters(in: .whitespacesAndNewlines)
        guard q.hasSuffix("?") else { return false }
        let marked = q.replacingOccurrences(of: #"[.:;]\s+"#, with: "\u{1}", options: .regularExpression)
        let clause = marked.split(separator: "\u{1}").last.map(String.init) ?? q
        let first = clause.lowercased().split(whereSeparator: { !$0.isLetter && $0 != "'" && $0 != "’" }).first.map(String.init) ?? ""
        return auxiliaries.contains(first.replacingOccurrences(of: "’", with: "'"))
    }

    static let auxiliaries: Set<String> = [
        "is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "should", "would", "will", "shall",
        "may", "might", "must", "has", "have", "had", "isn't", "aren't", "wasn't", "weren't", "doesn't", "don't",
        "didn't", "can't", "couldn't", "shouldn't", "won't", "wouldn't", "hasn't", "haven't",
    ]

    // MARK: Cues

    static let noAnswer = [
        "passages do not", "passage does not", "passages don't", "does not provide", "do not provide",
        "not mentioned", "no information", "not enough information", "insufficient information",
        "cannot be determined", "can't be determined", "not possible to determine", "unable to determine",
        "i cannot answer", "i can't answer", "i'm sorry", "i am sorry", "do not answer", "does not answer",
        "no passage", "none of the passages", "not provided", "not addressed", "does not mention", "do not mention",
    ]
    static let hedges = [
        "unclear", "uncertain", "inconclusive", "not conclusive", "not clear", "may or may not", "conflicting",
        "controversial", "remains to be", "mixed results", "mixed evidence", "it depends", "debated",
    ]
    static let negations: Set<String> = ["not", "no", "never", "cannot", "neither", "nor", "none"]
    static let stopWords: Set<String> = [
        "does", "do", "did", "is", "are", "was", "were", "have", "has", "had", "can", "could", "should", "would",
        "will", "with", "from", "that", "this", "these", "those", "there", "their", "what", "which", "when",
        "whether", "into", "than", "then", "more", "less", "between", "among", "after", "before", "during",
        "about", "over", "under", "other", "such", "they", "them", "been", "being", "also", "associated",
    ]

    static func isNegation(_ w: String) -> Bool { negations.contains(w) || w.hasSuffix("n't") }

    static func isContentWord(_ w: String) -> Bool { w.count >= 4 && !stopWords.contains(w) && !isNegation(w) }

    /// A crude stem so "reduce" meets "reduces" / "reduced": the first 5 letters.
    static func stem(_ w: String) -> String { String(w.prefix(5)) }

    // MARK: Text

    /// Lower case, without citation marks, Markdown emphasis and a leading "Answer:".
    static func clean(_ s: String) -> String {
        var t = s.lowercased()
        t = t.replacingOccurrences(of: #"\[[^\]]{0,40}\]"#, with: " ", options: .regularExpression)
        t = t.replacingOccurrences(of: #"[*_#`>]+"#, with: " ", options: .regularExpression)
        t = t.replacingOccurrences(of: "’", with: "'")
        t = t.trimmingCharacters(in: .whitespacesAndNewlines)
        if let r = t.range(of: #"^(?:final )?answer\s*[:\-]\s*"#, options: .regularExpression) { t.removeSubrange(r) }
        return t
    }

    /// Words: letters, digits and apostrophes.
    static func tokens(_ s: String) -> [String] {
        s.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "'") }).map(String.init)
    }

    /// Sentences split at `.`, `!`, `?` or a line end followed by space (decimals stay whole).
    static func splitSentences(_ s: String) -> [String] {
        s.components(separatedBy: CharacterSet.newlines).flatMap { line in
            line.replacingOccurrences(of: #"([.!?])\s+"#, with: "$1\u{1}", options: .regularExpression)
                .split(separator: "\u{1}").map { $0.trimmingCharacters(in: .whitespaces) }
        }.filter { !$0.isEmpty }
    }

    static func capture(_ pattern: String, in text: String) -> String? {
        guard let re = try? NSRegularExpression(pattern: pattern),
              let m = re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), m.numberOfRanges > 1,
              let r = Range(m.range(at: 1), in: text) else { return nil }
        return String(text[r])
    }
}
