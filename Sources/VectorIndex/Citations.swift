import Foundation

/// One citation marker found in an answer.
public struct Citation: Sendable, Equatable {
    /// The marker as written: `[1, 2]`, `[PMID 123]`, `PMID: 123`.
    public var text: String
    /// Passage numbers it names (`[1-3]` gives 1, 2, 3).
    public var numbers: [Int]
    /// PMIDs it names.
    public var pmids: [Int]

    public init(text: String, numbers: [Int] = [], pmids: [Int] = []) {
        self.text = text; self.numbers = numbers; self.pmids = pmids
    }
}

/// Finds the citations in a model's answer.
///
/// Recognised, in order of appearance:
/// - brackets holding only passage numbers and ranges: `[1]`, `[1, 2]`, `[1-3]`, `[1–3]`,
///   `[1; 4]`, `[1 and 2]`, optionally after a word such as `Passage`/`Source`/`Ref`
///   (`[Passage 2]`); a bracketed number of 5 digits or more is read as a PMID (`[22572410]`);
/// - PMIDs, in brackets or not: `[PMID 123]`, `[PMID: 123, 456]`, `[PMIDs 1, 2]`, `PMID 123`,
///   `PMID:123` (case-insensitive; not inside a longer word).
///
/// Anything else in brackets (`[12%]`, `[see above]`, `[a]`) is not a citation. A range spans at
/// most ``maxRange`` numbers (a longer one keeps its two ends).
public enum CitationParser {
    /// The most numbers one range expands to.
    public static let maxRange = 50

    /// - Returns: the citations of `text`, in order.
    public static func parse(_ text: String) -> [Citation] {
        let chars = Array(text)
        var out: [Citation] = []
        var i = 0
        while i < chars.count {
            if chars[i] == "[", let close = chars[(i + 1)...].prefix(80).firstIndex(where: { $0 == "]" || $0 == "[" || $0 == "\n" }),
               chars[close] == "]", let c = bracket(String(chars[(i + 1)..<close])) {
                out.append(Citation(text: String(chars[i...close]), numbers: c.numbers, pmids: c.pmids))
                i = close + 1
                continue
            }
            if let (end, pmid) = barePMID(chars, at: i) {
                out.append(Citation(text: String(chars[i..<end]), pmids: [pmid]))
                i = end
                continue
            }
            i += 1
        }
        return out
    }

    // MARK: Brackets

    private static let numberWords: Set<String> = ["passage", "passages", "source", "sources", "ref", "refs",
                                                   "reference", "references", "doc", "document", "documents"]

    /// The numbers and PMIDs of a bracket's content, or nil when it is not a citation.
    static func bracket(_ content: String) -> (numbers: [Int], pmids: [Int])? {
        var rest = Substring(content.trimmingSpaces())
        var pmidMode = false
        if let word = leadingWord(rest) {
            let w = word.lowercased()
            if w == "pmid" || w == "pmids" { pmidMode = true } else if !numberWords.contains(w) { return nil }
            rest = rest.dropFirst(word.count).drop { $0 == ":" || $0 == " " }
        }
        let items = rest.replacingAnd().split(whereSeparator: { $0 == "," || $0 == ";" }).map { $0.trimmingSpaces() }
        guard !items.isEmpty else { return nil }
        var numbers: [Int] = [], pmids: [Int] = []
        for item in items {
            var item = Substring(item), isPMID = pmidMode
            if let word = leadingWord(item) {
                guard ["pmid", "pmids"].contains(word.lowercased()) else { return nil }
                isPMID = true
                item = item.dropFirst(word.count).drop { $0 == ":" || $0 == " " }
            }
            let ends = item.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "-" || $0 == "–" || $0 == "—" })
                .map { $0.trimmingSpaces() }
            guard (1...2).contains(ends.count), ends.allSatisfy({ (e: String) in !e.isEmpty && e.count <= 9 && e.allSatisfy { (c: Character) in c.isASCIIDigit } }) else {
                return nil
            }
            let values = ends.compactMap { Int($0) }
            if isPMID || values.allSatisfy({ $0 >= 10_000 }) {
                guard values.count == 1 else { return nil }
                pmids.append(values[0])
            } else if values.count == 1 {
                numbers.append(values[0])
            } else {
                let (lo, hi) = (values[0], values[1])
                guard lo <= hi else { return nil }
                let span: Int = hi - lo
                numbers += span < maxRange ? Array(lo...hi) : [lo, hi]
            }
        }
        return (numbers, pmids)
    }

    /// The letters a string starts with (nil when it starts with something else).
    private static func leadingWord(_ s: Substring) -> Substring? {
        let word = s.prefix { $0.isLetter }
        return word.isEmpty ? nil : word
    }

    // MARK: Bare PMIDs

    /// `PMID 123` / `PMID: 123` / `PMID123` starting at `i`: the index after it and the PMID.
    private static func barePMID(_ chars: [Character], at i: Int) -> (Int, Int)? {
        guard i + 4 < chars.count, String(chars[i..<(i + 4)]).lowercased() == "pmid",
              i == 0 || !(chars[i - 1].isLetter || chars[i - 1].isNumber) else { return nil }
        var j = i + 4
        if j < chars.count, chars[j] == "s" || chars[j] == "S" { j += 1 }
        while j < chars.count, chars[j] == ":" || chars[j] == " " || chars[j] == "#" { j += 1 }
        let start = j
        while j < chars.count, chars[j].isASCIIDigit { j += 1 }
        guard j > start, j - start <= 9, let pmid = Int(String(chars[start..<j])) else { return nil }
        return (j, pmid)
    }
}

/// An answer's citations checked against the passages its prompt showed.
///
/// A number cites the passage with that number; a PMID cites every shown passage of that
/// document. A number outside `1...passages.count` or a PMID that was not shown is invalid: it
/// is counted and listed, and never becomes a source.
public struct CitationCheck: Sendable, Equatable {
    /// Numbers of the passages cited, in order of first citation.
    public var citedNumbers: [Int]
    /// Invalid references as written: `[7]` (out of range), `PMID 999` (not shown). A marker
    /// naming one valid and one invalid reference is listed for its invalid part (`[2, 9]` → `9`).
    public var invalid: [String]
    /// Every citation marker found (valid or not).
    public var citations: [Citation]

    /// - Parameters:
    ///   - answer: the model's text.
    ///   - passages: the passages the prompt showed.
    public init(answer: String, passages: [PromptPassages.Passage]) {
        citations = CitationParser.parse(answer)
        var cited: [Int] = [], invalid: [String] = []
        func cite(_ n: Int) { if !cited.contains(n) { cited.append(n) } }
        for c in citations {
            let whole = c.numbers.count + c.pmids.count == 1
            for n in c.numbers {
                if (1...max(1, passages.count)).contains(n) && !passages.isEmpty { cite(n) } else { invalid.append(whole ? c.text : "\(n)") }
            }
            for pmid in c.pmids {
                let shown = passages.filter { $0.hit.pmid == pmid }
                if shown.isEmpty { invalid.append(whole ? c.text : "PMID \(pmid)") } else { shown.forEach { cite($0.number) } }
            }
        }
        citedNumbers = cited
        self.invalid = invalid
    }

    /// The number of invalid references.
    public var invalidCount: Int { invalid.count }
}

// MARK: - Helpers

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// ` and ` / ` & ` as commas (`[1 and 2]`).
    fileprivate func replacingAnd() -> String {
        String(self).replacingOccurrences(of: " and ", with: ",").replacingOccurrences(of: " & ", with: ",")
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
