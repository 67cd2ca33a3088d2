/// Retrieved passages as a prompt shows them, best first, each with its PMID (or document key)
/// and title, trimmed to a token budget.
///
/// The one trimming rule for every grounded prompt (`selfspec ask` and the server's
/// `GroundedQuestion`, the generator's response prompt): whole passages while they fit, then the
/// next one cut at a word boundary, kept only if at least ``minimumWords`` words are left, and
/// nothing after it. Each passage has a number from 1 in prompt order; with ``Style/numbered`` the
/// prompt shows it, and ``CitationCheck`` maps cited numbers back to the passages.
///
/// ```
/// [1] PMID 22572410 · Air embolism during VATS excision      (.numbered: ask, GroundedQuestion)
/// In patients undergoing video-assisted thoracoscopic surgery …
///
/// [PMID 22572410] Air embolism during VATS excision           (.pmid: the generator's response prompt)
/// In patients undergoing video-assisted thoracoscopic surgery …
/// ```
public struct PromptPassages: Sendable, Equatable {
    /// How a passage's header reads.
    public enum Style: Sendable, Equatable {
        /// `[n] PMID 123 · Title`: cited by number.
        case numbered
        /// `[PMID 123] Title`: cited by PMID (the self-specialization data's format).
        case pmid
    }

    /// One passage as shown.
    public struct Passage: Sendable, Equatable {
        /// Its number in the prompt, from 1.
        public var number: Int
        public var hit: SearchHit
        /// The text shown: the passage's, or its first words and " …" when it was cut.
        public var text: String
        /// Whether `text` was cut to fit the budget.
        public var isCut: Bool

        /// `PMID 123`, or the document key when there is no PMID.
        public var label: String { hit.pmid.map { "PMID \($0)" } ?? hit.documentKey }
    }

    /// The passages shown, in prompt order (numbers 1, 2, …).
    public var passages: [Passage]
    /// The passages as one block of text, each ending with a blank line (empty when none fit).
    public var text: String
    /// Tokens `text` takes (the sum over the passages, each counted on its own).
    public var tokens: Int

    public var style: Style

    /// Fewest words a cut passage keeps (a shorter stub is left out).
    public static let minimumWords = 24

    /// - Parameters:
    ///   - hits: retrieved passages, best first.
    ///   - budget: the most tokens the passages together may take.
    ///   - style: how the passages' headers read.
    ///   - countTokens: counts tokens as the model's tokenizer does.
    public init(hits: [SearchHit], budget: Int, style: Style = .numbered, countTokens: (String) -> Int) {
        self.style = style
        var shown: [Passage] = [], block = "", used = 0
        func add(_ h: SearchHit, text: String, cut: Bool, cost: Int) {
            let p = Passage(number: shown.count + 1, hit: h, text: text, isCut: cut)
            block += Self.render(number: p.number, hit: h, text: text, style: style)
            used += cost
            shown.append(p)
        }
        for h in hits {
            let number = shown.count + 1
            let cost = countTokens(Self.render(number: number, hit: h, text: h.text, style: style))
            if used + cost <= budget {
                add(h, text: h.text, cut: false, cost: cost)
                continue
            }
            // The words of this passage that still fit (binary search on the word count).
            let words = h.text.split(separator: " ")
            func cut(_ n: Int) -> String { words.prefix(n).joined(separator: " ") + " …" }
            var lo = 0, hi = words.count
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if used + countTokens(Self.render(number: number, hit: h, text: cut(mid), style: style)) <= budget { lo = mid } else { hi = mid - 1 }
            }
            if lo >= Self.minimumWords {
                let text = cut(lo)
                add(h, text: text, cut: true, cost: countTokens(Self.render(number: number, hit: h, text: text, style: style)))
            }
            break
        }
        passages = shown
        text = block
        tokens = used
    }

    /// One passage as the prompt shows it: its header (`[n] PMID 123 · Title` or
    /// `[PMID 123] Title`), its text, a blank line.
    static func render(number: Int, hit: SearchHit, text: String, style: Style) -> String {
        let label = hit.pmid.map { "PMID \($0)" } ?? hit.documentKey
        switch style {
        case .numbered:
            let title = hit.title.isEmpty ? "" : " · \(hit.title)"
            return "[\(number)] \(label)\(title)\n\(text)\n\n"
        case .pmid:
            return "[\(label)] \(hit.title)\n\(text)\n\n"
        }
    }
}
