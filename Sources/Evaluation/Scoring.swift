import Foundation

/// How a label task's answer is read from the model. Every convention comes from the same
/// prefill of each item (see `OptionScorer`); `calibrated` adds one content-free prompt per task.
public enum Scoring: String, Sendable, Codable, CaseIterable {
    /// Argmax of the log-probability of each label's exact text ("yes", "B") after the prompt.
    case labels
    /// Argmax of each label's probability summed over its surface forms (`SurfaceForms`).
    case surface
    /// Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): argmax of
    /// `P(label | item) / P(label | content-free input)`, the second from the same prompt with the
    /// input replaced by "N/A" (one extra prompt per task).
    case calibrated
    /// The greedy answer parsed into a label (`AnswerParser`); an unparseable answer is wrong.
    case generate
}

// MARK: - Surface forms

/// The ways a model may write a label, for `Scoring.surface`.
///
/// A word label ("yes") is written lowercase, capitalized or uppercase; a letter label ("B") as
/// `B` or `(B)`, and, when the item has option texts, also as its option's text (as given and with
/// a capital first letter). Each form is taken with and without a leading space. The probability
/// of a form is that of its token sequence as a prefix of the answer, so it already covers every
/// continuation ("Yes." and "Yes, but…" are inside "Yes"): the forms are reduced to a prefix-free
/// set across all labels (a form that another form's tokens start is dropped, equal sequences kept
/// once), which makes the summed probabilities those of disjoint events.
public enum SurfaceForms {
    /// Whether every label is one uppercase letter (multiple choice).
    public static func areLetters(_ labels: [String]) -> Bool {
        labels.allSatisfy { $0.count == 1 && $0.first!.isUppercase && $0.first!.isLetter }
    }

    /// The texts of one label's forms, distinct, in a fixed order.
    public static func texts(label: String, option: String?) -> [String] {
        var bases: [String]
        if areLetters([label]) {
            bases = [label, "(\(label))"]
        } else {
            bases = [label.lowercased(), capitalized(label), label.uppercased()]
        }
        if let option, !option.isEmpty { bases += [option, capitalized(option)] }
        var seen = Set<String>(), out: [String] = []
        for text in bases.flatMap({ [$0, " " + $0] }) where seen.insert(text).inserted { out.append(text) }
        return out
    }

    /// Token sequences of every label's forms, `[label][form]`, prefix-free across labels.
    /// - Parameters:
    ///   - options: the option text of each label (empty when the labels have none).
    ///   - encode: text to token ids, without BOS or special tokens.
    public static func tokens(labels: [String], options: [String], encode: (String) -> [Int]) -> [[[Int]]] {
        var all: [(label: Int, tokens: [Int])] = []
        for (l, label) in labels.enumerated() {
            for text in texts(label: label, option: l < options.count ? options[l] : nil) {
                let t = encode(text)
                if !t.isEmpty { all.append((l, t)) }
            }
        }
        var out = [[[Int]]](repeating: [], count: labels.count)
        for (i, form) in all.enumerated() {
            let covered = all.indices.contains { j in
                j != i && all[j].tokens.count <= form.tokens.count && form.tokens.starts(with: all[j].tokens)
                    && (all[j].tokens.count < form.tokens.count || j < i)
            }
            if !covered { out[form.label].append(form.tokens) }
        }
        return out
    }

    static func capitalized(_ s: String) -> String {
        guard let f = s.first else { return s }
        return f.uppercased() + s.dropFirst()
    }
}

// MARK: - Parsing generated answers

/// Reads a label from a generated answer, for `Scoring.generate`.
///
/// Word labels (yes/no/maybe): the first word of the answer, ignoring case, that equals a label
/// ("Yes, but…" is yes, "Maybe not" is maybe, "The answer is no." is no).
///
/// Letter labels (multiple choice), the first rule that names one of the item's letters:
/// 1. the answer is a letter alone, optionally in parentheses or with a period (`b`, `(B)`, `C.`);
/// 2. it starts with a parenthesized letter (`(B) …`) or an uppercase letter followed by `.`, `)`,
///    `:`, `,` or a dash (`B. Aspirin`);
/// 3. "answer", "option" or "choice", optionally "is" and `:`, then a parenthesized letter or an
///    uppercase letter alone (`The answer is (B)`, `Answer: C`, `option D`);
/// 4. the answer contains an option's text, ignoring case (the longest such option);
/// 5. a parenthesized uppercase letter anywhere.
///
/// Anything else is unparseable (`nil`).
public enum AnswerParser {
    /// The index in `labels` the answer names, or nil.
    /// - Parameter options: the option text of each label (multiple choice), or empty.
    public static func parse(_ answer: String, labels: [String], options: [String] = []) -> Int? {
        SurfaceForms.areLetters(labels) ? letter(answer, labels: labels, options: options) : word(answer, labels: labels)
    }

    static func word(_ answer: String, labels: [String]) -> Int? {
        let lowered = labels.map { $0.lowercased() }
        for w in answer.lowercased().split(whereSeparator: { !$0.isLetter }) {
            if let i = lowered.firstIndex(of: String(w)) { return i }
        }
        return nil
    }

    static let letterPatterns = [
        #"^\(?([A-Za-z])\)?\.?$"#,
        #"^(?:\(([A-Za-z])\)|([A-Z])(?:[.):,]|\s*[-–]))"#,
        #"(?i:answer|option|choice)\s*(?:is\s*)?(?::\s*)?(?:\(([A-Za-z])\)|([A-Z])\b)"#,
    ]
    static let parenthesized = #"\(([A-Z])\)"#

    static func letter(_ answer: String, labels: [String], options: [String]) -> Int? {
        let text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
            .trimmingCharacters(in: CharacterSet(charactersIn: "*_\"'`#> "))
        func named(_ pattern: String) -> Int? {
            guard let letter = firstCapture(pattern, in: text) else { return nil }
            return labels.firstIndex(of: letter.uppercased())
        }
        for p in letterPatterns { if let i = named(p) { return i } }
        let lowered = text.lowercased()
        let matches = options.indices.filter { o in
            let t = options[o].lowercased().trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ".")))
            return !t.isEmpty && lowered.contains(t)
        }
        if let best = matches.max(by: { options[$0].count < options[$1].count }), best < labels.count { return best }
        return named(parenthesized)
    }

    /// The first non-empty capture group of the first match of `pattern`.
    static func firstCapture(_ pattern: String, in text: String) -> String? {
        guard let re = try? NSRegularExpression(pattern: pattern),
              let m = re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return nil }
        for g in 1..<m.numberOfRanges {
            if let r = Range(m.range(at: g), in: text) { return String(text[r]) }
        }
        return nil
    }
}
