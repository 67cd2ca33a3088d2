import Evaluation
import Foundation
import Ingest
import Tensor

// The entity-shaped kinds of CorpusTaskMiner: tasks in the shape of the evaluation's NER, GAD and
// multiple-choice items, built from corpus sentences with names from EntityLexicon (distant
// supervision) and fixed cue rules, with no model call. Each is asked with the evaluation's own
// instruction, so the adapter learns the task's format and its answer vocabulary.

extension CorpusTaskMiner {
    /// Shortest and longest sentence, in characters, for the entity-shaped kinds.
    static let lexiconSentenceLength = 40...400

    /// Gene-like tokens that are not genes (disease and virus abbreviations, pollutants).
    static let geneStoplist: Set<String> = ["T2DM", "T1DM", "T2D", "T1D", "H1N1", "H5N1", "H3N2", "H7N9", "COVID19", "SARS2",
                                            "PM10", "PM25", "CO2", "NO2", "SO2", "O3", "CD19CAR", "MCF7", "HEK293", "HELA", "A549", "U2OS"]

    /// Letter parts of statistics and chemistry tokens that look like gene symbols ("95%CI1.07"
    /// has `CI1`; `CO2`, `NH3`).
    static let nonGeneLetters: Set<String> = ["CI", "OR", "HR", "RR", "IQR", "SD", "SE", "SEM", "PM", "CO", "NO", "SO", "NH", "CH", "PH",
                                              "BMI", "HBA", "AUC", "ROC", "OS", "PFS", "DFS", "WHO", "ICD", "DSM", "COVID", "SARS", "MERS"]

    /// Negation cues: a sentence with one says the relation does not hold (GAD's negative class).
    static let negationCues = [" no ", " not ", "n't ", " neither ", " nor ", " none ", "lack of", "absence of", "failed to", "unrelated", "did not", "no significant"]
    /// Association cues: a sentence with one (and no negation) says the relation holds.
    static let associationCues = ["associat", "risk", "susceptib", "linked", "correlat", "predispos", "contribut", "implicated", "involved in"]

    /// The entity-shaped tasks of one section's sentences.
    /// - Parameters:
    ///   - sentences: the sentences of the document's sections, with their section names.
    ///   - add: records one task (kind, instruction, input, output, section).
    func lexiconTasks(_ sentences: [(section: String, text: String)], documentKey: String,
                      add: (Kind, String, String, String, String) -> Void) {
        let usable = sentences.filter { Self.lexiconSentenceLength.contains($0.text.count) }
        guard !usable.isEmpty else { return }
        var rng = SplitMix64.forItem(Int(truncatingIfNeeded: Self.stableHash(documentKey)), seed: 0x1E71C0)
        for lexicon in lexicons {
            let found = usable.map { lexicon.mentions(in: $0.text) }
            if kinds.contains(.entities) {
                var positive = 0, negative = 0
                for (s, ranges) in zip(usable, found) {
                    if ranges.isEmpty {
                        guard negative < 1 else { continue }
                        negative += 1
                        add(.entities, PromptBuilder.nerInstruction(type: lexicon.type), "Sentence: \(s.text)", "none", s.section)
                    } else if positive < maxLexiconTasksPerDocument {
                        positive += 1
                        var seen = Set<String>(), names: [String] = []
                        for r in ranges where seen.insert(s.text[r].lowercased()).inserted { names.append(String(s.text[r])) }
                        add(.entities, PromptBuilder.nerInstruction(type: lexicon.type), "Sentence: \(s.text)",
                            names.joined(separator: "\n"), s.section)
                    }
                }
            }
            if kinds.contains(.cloze), lexicon.surfaces.count >= 4,
               let i = found.firstIndex(where: { !$0.isEmpty }) {
                let s = usable[i], r = found[i][0]
                let answer = String(s.text[r])
                var options = [answer], used: Set<String> = [answer.lowercased()]
                while options.count < 4 {
                    let d = lexicon.surfaces[Int(rng.next() % UInt64(lexicon.surfaces.count))]
                    if used.insert(d.lowercased()).inserted { options.append(d) }
                }
                let position = Int(rng.next() % 4)
                options.swapAt(0, position)
                let letters = ["A", "B", "C", "D"]
                let blanked = s.text.replacingCharacters(in: r, with: "_____")
                let listed = zip(letters, options).map { "\($0). \($1)" }.joined(separator: "\n")
                add(.cloze, PromptBuilder.instruction(for: .mcq),
                    "Question: Which term fills the blank in this sentence? \(blanked)\n\(listed)", letters[position], s.section)
            }
        }
        if kinds.contains(.relation), let diseases = lexicons.first(where: { $0.type.lowercased() == "disease" }) {
            var made = 0
            for s in usable where made < maxLexiconTasksPerDocument {
                guard let gene = Self.geneSymbols(in: s.text).first,
                      let disease = diseases.mentions(in: s.text).first(where: { !$0.overlaps(gene) }),
                      let label = Self.relationLabel(s.text) else { continue }
                let (first, second) = gene.lowerBound < disease.lowerBound
                    ? ((gene, "@GENE$"), (disease, "@DISEASE$")) : ((disease, "@DISEASE$"), (gene, "@GENE$"))
                let masked = s.text[..<first.0.lowerBound] + first.1 + s.text[first.0.upperBound..<second.0.lowerBound]
                    + second.1 + s.text[second.0.upperBound...]
                made += 1
                add(.relation, PromptBuilder.instruction(for: .gad), "Sentence: \(masked)", label, s.section)
            }
        }
    }

    /// Gene-symbol-like spans: an upper-case token of 3-10 letters and digits with at least two
    /// letters and a digit ("BRCA1", "CYP2D6"), or upper-case letters, a hyphen and a number
    /// ("IL-6", "TNF-α" is not matched); names in ``geneStoplist`` are skipped.
    static func geneSymbols(in text: String) -> [Range<String.Index>] {
        let tokens = EntityLexicon.tokens(of: text)
        func isCaps(_ s: Substring) -> Bool { s.allSatisfy { ($0.isUppercase && $0.isASCII) || $0.isNumber } }
        var out: [Range<String.Index>] = [], i = 0
        while i < tokens.count {
            let t = text[tokens[i]]
            let letters = t.filter(\.isLetter).count, digits = t.filter(\.isNumber).count
            if (3...10).contains(t.count), t.first!.isUppercase, isCaps(t), letters >= 2, digits >= 1,
               !geneStoplist.contains(String(t)), !nonGeneLetters.contains(String(t.prefix(while: \.isLetter))),
               !isFormula(t) {
                out.append(tokens[i])
            } else if i + 2 < tokens.count, (2...6).contains(t.count), letters == t.count, isCaps(t),
                      text[tokens[i + 1]] == "-", tokens[i].upperBound == tokens[i + 1].lowerBound,
                      tokens[i + 1].upperBound == tokens[i + 2].lowerBound,
                      text[tokens[i + 2]].allSatisfy(\.isNumber), (1...2).contains(text[tokens[i + 2]].count),
                      !geneStoplist.contains(String(t) + text[tokens[i + 2]]), !nonGeneLetters.contains(String(t)) {
                out.append(tokens[i].lowerBound..<tokens[i + 2].upperBound)
                i += 2
            }
            i += 1
        }
        return out
    }

    /// Whether a token reads as a chemical formula: two or more one-letter element groups
    /// ("H2O2", "C6H12O6"), unlike gene symbols ("CD68", "CYP2D6").
    static func isFormula(_ token: Substring) -> Bool {
        let groups = token.split(whereSeparator: \.isNumber)
        return groups.count >= 2 && groups.allSatisfy { $0.count == 1 }
    }

    /// `no` when the sentence has a negation cue, `yes` when it has an association cue, nil when
    /// it has neither.
    static func relationLabel(_ sentence: String) -> String? {
        let s = " " + sentence.lowercased() + " "
        if negationCues.contains(where: s.contains) { return "no" }
        if associationCues.contains(where: s.contains) { return "yes" }
        return nil
    }

    /// FNV-1a of the UTF-8 bytes: the same on every platform and run.
    static func stableHash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}
