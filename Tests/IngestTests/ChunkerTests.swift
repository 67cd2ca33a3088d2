import XCTest
@testable import Ingest

// MARK: - Fixtures

/// Realistic abstracts written for these tests (not real records).
private enum Abstracts {
    static let structured: [(name: String, text: String)] = [
        ("BACKGROUND", "Sepsis-associated acute kidney injury (AKI) is common in intensive care units and is "
            + "associated with high mortality. Early biomarkers, e.g. NGAL and KIM-1, have been proposed, "
            + "but their value vs. serum creatinine remains unclear."),
        ("METHODS", "We enrolled 212 adults with sepsis at three centres between Jan. 2018 and Dec. 2020. "
            + "Plasma NGAL was measured at admission (approx. 2 h after triage) and at 24 h. The primary "
            + "outcome was AKI within 72 h, as defined by KDIGO criteria (cf. Ref. 14). Analyses followed "
            + "the method of J. K. Smith et al. (2016) and used logistic regression."),
        ("RESULTS", "AKI developed in 81 patients (38.2%). Median NGAL was 3.5-fold higher in patients who "
            + "developed AKI (412 vs. 118 ng/mL; p < 0.001). The area under the curve was 0.82 (95% CI "
            + "0.76-0.88). In Fig. 2 the calibration slope was close to 1. No. 17 of the centres' protocols "
            + "was excluded. Were these findings robust? Sensitivity analyses gave similar results!"),
        ("CONCLUSIONS", "Plasma NGAL at admission predicts sepsis-associated AKI. METHODS: validation in an "
            + "external cohort is under way... Results are expected in 2025."),
    ]

    /// Unicode: Greek letters, accents (precomposed and combining), emoji, non-breaking space.
    static let unicode = "Résumé of the café study: TNF-α and IL-1β rose 2.5-fold in naïve mice 🐭. "
        + "α-Synuclein aggregates were seen in 12 of 15 brains 🧠 (Fig. 3B). "
        + "Cafe\u{301} workers showed a β-cell loss of ca. 30\u{00A0}% vs. controls. "
        + "Ångström-scale imaging of E. coli 🦠 confirmed it. Ω-3 fatty acids had no effect! "
        + "mRNA levels of Δ-opioid receptors were unchanged.\n"
        + "Dr. Müller (Zürich) and Prof. Ørsted (Århus) led the trial."

    /// One sentence of 500 words with no sentence break inside.
    static let longSentence: String = (0..<500).map { "w\($0)" }.joined(separator: " ") + "."
}

/// A sentence of exactly `words` words whose first word is `S<index>`.
private func sentence(_ index: Int, words: Int) -> String {
    (["S\(index)"] + Array(repeating: "w", count: words - 1)).joined(separator: " ") + "."
}

private func text(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
    var s = ""
    s.unicodeScalars.append(contentsOf: scalars)
    return s
}

private func sentences(_ input: String) -> [String] {
    let scalars = Array(input.unicodeScalars)
    return SentenceSplitter().split(input).map { text(scalars[$0]) }
}

private func document(_ body: String) -> Document {
    Document(key: "t", source: .text, title: "Test", text: body)
}

private func chunker(max: Int, overlap: Int, min: Int) throws -> Chunker {
    try Chunker(options: .init(maxWords: max, overlapWords: overlap, minWords: min))
}

private func wordCount(_ s: String) -> Int {
    s.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }).count
}

private func firstWords(_ passages: [Passage]) -> [String] {
    passages.map { String($0.text.prefix { !$0.isWhitespace }) }
}

/// Checks the provenance invariant independently of the chunker's own slicing: `text` is exactly
/// the scalars `start..<end` of the document, ordinals count up, passages are trimmed, and every
/// non-space scalar of the document is in some passage.
private func assertProvenance(_ passages: [Passage], of doc: Document,
                              file: StaticString = #filePath, line: UInt = #line) {
    let view = doc.text.unicodeScalars
    var covered = [Bool](repeating: false, count: view.count)
    for (i, p) in passages.enumerated() {
        XCTAssertEqual(p.ordinal, i, "ordinal", file: file, line: line)
        XCTAssertTrue(0 <= p.start && p.start < p.end && p.end <= view.count,
                      "passage \(i) range \(p.start)..<\(p.end)", file: file, line: line)
        guard 0 <= p.start, p.start < p.end, p.end <= view.count else { continue }
        let a = view.index(view.startIndex, offsetBy: p.start)
        let b = view.index(view.startIndex, offsetBy: p.end)
        XCTAssertEqual(Array(p.text.unicodeScalars), Array(view[a..<b]), "passage \(i) text", file: file, line: line)
        XCTAssertEqual(p.text, String(view[a..<b]), file: file, line: line)
        XCTAssertFalse(p.text.first!.isWhitespace || p.text.last!.isWhitespace, "trimmed", file: file, line: line)
        for k in p.start..<p.end { covered[k] = true }
        if i > 0 {
            XCTAssertGreaterThan(p.start, passages[i - 1].start, "passage \(i) starts later", file: file, line: line)
            XCTAssertGreaterThan(p.end, passages[i - 1].end, "passage \(i) adds text", file: file, line: line)
        }
    }
    for (k, c) in view.enumerated() where !c.properties.isWhitespace {
        XCTAssertTrue(covered[k], "scalar \(k) '\(c)' is in no passage", file: file, line: line)
        if !covered[k] { break }
    }
}

/// Sentence splitter and chunker tests, in one class so `--filter ChunkerTests` runs them all.
final class ChunkerTests: XCTestCase {
    // MARK: Sentence splitter

    func testSplitterSplitsOnTerminatorsBeforeUpperCaseDigitQuoteOrBracket() {
        XCTAssertEqual(
            sentences("Cells were lysed. Were they viable? Yes! 12 samples failed. \"Quoted\" start. "
                + "(Bracketed) start. [Ref] start. \u{201C}Curly\u{201D} start."),
            ["Cells were lysed.", "Were they viable?", "Yes!", "12 samples failed.", "\"Quoted\" start.",
             "(Bracketed) start.", "[Ref] start.", "\u{201C}Curly\u{201D} start."])
        // Closing quotes and brackets stay with their sentence.
        XCTAssertEqual(sentences("He said \"stop.\" Then he left (as planned.) Later he returned."),
                       ["He said \"stop.\"", "Then he left (as planned.)", "Later he returned."])
    }

    func testSplitterDoesNotSplitBeforeLowerCase() {
        XCTAssertEqual(sentences("Mutations were found in exon 4. however, not in exon 5."),
                       ["Mutations were found in exon 4. however, not in exon 5."])
        // ... but a Greek letter or a mixed-case word starts a sentence.
        XCTAssertEqual(sentences("Levels rose. α-Synuclein increased. siRNA reduced growth. mRNA fell. pH was 7."),
                       ["Levels rose.", "α-Synuclein increased.", "siRNA reduced growth.", "mRNA fell.", "pH was 7."])
    }

    func testSplitterAbbreviationsDoNotSplit() {
        let single = [
            "Several organs, e.g. Liver and kidney, were affected.",
            "Markers, i.e. CD4 and CD8, were measured.",
            "As shown by Smith et al. (2019), the effect was large.",
            "Jones et al. Nature 2019 reported it.",
            "Drug A vs. Placebo was tested.",
            "Results are shown in Fig. 2 and Figs. 3-4.",
            "See Ref. 12 for details.",
            "Patient No. 5 was excluded.",
            "The dose was approx. 5 mg per day.",
            "We enrolled ca. 300 patients.",
            "Dr. Smith and St. John's staff agreed.",
            "This was reported earlier (cf. Table 2).",
            "Values were 3 and 5 (resp. Group A and B).",
            "Samples collected in Jan. 2020 were analysed.",
            "Follow-up ended on Dec. 31 of that year.",
            "Data from the U.S. Army were used.",
            "Cells (FIG. 4) and tissues (fig. 5) differed.",
        ]
        for s in single { XCTAssertEqual(sentences(s), [s]) }
    }

    func testSplitterAbbreviationsThatMayEndASentenceSplitBeforeAnOpener() {
        XCTAssertEqual(sentences("This was reported by Smith et al. These results were confirmed."),
                       ["This was reported by Smith et al.", "These results were confirmed."])
        XCTAssertEqual(sentences("We measured pH, temperature, etc. The values were stable."),
                       ["We measured pH, temperature, etc.", "The values were stable."])
        // "no." at a sentence end before a word, "No." before a number.
        XCTAssertEqual(sentences("The answer was no. Then we asked again."),
                       ["The answer was no.", "Then we asked again."])
    }

    func testSplitterDecimalsDoNotSplit() {
        XCTAssertEqual(
            sentences("The dose was 3.5 mg. Differences were significant (p < 0.05). A p-value of 0.001 was found."),
            ["The dose was 3.5 mg.", "Differences were significant (p < 0.05).", "A p-value of 0.001 was found."])
        XCTAssertEqual(sentences("Mean age was 45.2 years. 3.5 mg was given."),
                       ["Mean age was 45.2 years.", "3.5 mg was given."])
    }

    func testSplitterInitialsDoNotSplit() {
        XCTAssertEqual(sentences("The method of J. K. Smith was used. A. thaliana and E. coli were grown."),
                       ["The method of J. K. Smith was used.", "A. thaliana and E. coli were grown."])
        // A capital letter before a common opener ends a sentence.
        XCTAssertEqual(sentences("Patients had hepatitis B. The cohort was large."),
                       ["Patients had hepatitis B.", "The cohort was large."])
    }

    func testSplitterEllipsisDoesNotSplit() {
        XCTAssertEqual(sentences("Responses varied... Some improved while others did not."),
                       ["Responses varied... Some improved while others did not."])
        XCTAssertEqual(sentences("The list (A, B, ... Z) was long. It ended."),
                       ["The list (A, B, ... Z) was long.", "It ended."])
    }

    func testSplitterNewlinesSplit() {
        XCTAssertEqual(sentences("Title line\nSecond line without period\n\nNew paragraph. Next one.\r\nLast, e.g.\nhere"),
                       ["Title line", "Second line without period", "New paragraph.", "Next one.", "Last, e.g.", "here"])
    }

    func testSplitterStructuredAbstractLabelsStayInTheirSentence() {
        XCTAssertEqual(sentences("BACKGROUND: Sepsis is common. METHODS: We enrolled 40 adults. RESULTS: 12 died."),
                       ["BACKGROUND: Sepsis is common.", "METHODS: We enrolled 40 adults.", "RESULTS: 12 died."])
    }

    func testSplitterRangesAreTrimmedScalarOffsets() {
        let splitter = SentenceSplitter()
        XCTAssertEqual(splitter.split("  First one.   Second one!  \n\n  Third  "), [2..<12, 15..<26, 32..<37])
        // "Cafe\u{301}" is 5 scalars (one Character), each emoji 1 scalar.
        XCTAssertEqual(splitter.split("Cafe\u{301} 😀 works. Ωmega next."), [0..<14, 15..<26])
        XCTAssertEqual(splitter.split(""), [])
        XCTAssertEqual(splitter.split(" \n\t \u{00A0}"), [])
        XCTAssertEqual(splitter.split("no terminator"), [0..<13])
    }

    func testSplitterSentencesCoverAllNonSpaceText() {
        let input = Abstracts.structured.map(\.text).joined(separator: "\n\n") + "\n" + Abstracts.unicode
        let scalars = Array(input.unicodeScalars)
        let ranges = SentenceSplitter().split(input)
        var covered = [Bool](repeating: false, count: scalars.count)
        for (i, r) in ranges.enumerated() {
            XCTAssertFalse(scalars[r.lowerBound].properties.isWhitespace)
            XCTAssertFalse(scalars[r.upperBound - 1].properties.isWhitespace)
            if i > 0 { XCTAssertLessThan(ranges[i - 1].upperBound, r.lowerBound) }
            for k in r { covered[k] = true }
        }
        for (k, c) in scalars.enumerated() where !c.properties.isWhitespace { XCTAssertTrue(covered[k], "\(k)") }
        XCTAssertEqual(ranges.count, 22)
    }

    // MARK: Chunker

    func testEmptyDocumentGivesNoPassages() {
        XCTAssertEqual(Chunker().chunk(document("")), [])
        XCTAssertEqual(Chunker().chunk(document(" \n\n ")), [])
    }

    func testShortDocumentWithoutSectionsIsOnePassageNamedText() {
        let doc = document("  Cells were lysed. Proteins were measured.\n")
        XCTAssertEqual(Chunker().chunk(doc),
                       [Passage(ordinal: 0, section: "text", start: 2, end: 43,
                                text: "Cells were lysed. Proteins were measured.")])
    }

    func testDefaultOptions() {
        XCTAssertEqual(Chunker().options, Chunker.Options(maxWords: 160, overlapWords: 32, minWords: 8))
    }

    func testPassageSpanningSectionsIsNamedWithEnDash() throws {
        var doc = document("")
        doc.setSections([("BACKGROUND", "One two three four."), ("METHODS", "Five six seven eight."),
                         ("RESULTS", "Nine ten eleven twelve.")])
        let passages = Chunker().chunk(doc)
        XCTAssertEqual(passages.map(\.section), ["BACKGROUND\u{2013}RESULTS"])
        XCTAssertEqual(passages.first?.text, "One two three four.\n\nFive six seven eight.\n\nNine ten eleven twelve.")
    }

    func testStructuredAbstract() throws {
        var doc = Document(key: "31415926", source: .pubmed, pmid: 31415926, title: "NGAL predicts AKI in sepsis")
        doc.setSections(Abstracts.structured)
        let passages = Chunker().chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertEqual(passages.count, 2)
        XCTAssertEqual(passages.map(\.section), ["BACKGROUND\u{2013}RESULTS", "RESULTS\u{2013}CONCLUSIONS"])
        XCTAssertTrue(passages[0].text.hasPrefix("Sepsis-associated acute kidney injury"))
        XCTAssertTrue(passages[0].text.hasSuffix("Sensitivity analyses gave similar results!"))
        XCTAssertEqual(wordCount(passages[0].text), 155)
        // The second passage repeats the last four sentences of RESULTS (27 words <= 32).
        XCTAssertTrue(passages[1].text.hasPrefix("In Fig. 2 the calibration slope"))
        XCTAssertTrue(passages[1].text.hasSuffix("Results are expected in 2025."))
        XCTAssertEqual(wordCount(passages[1].text), 27 + 21)

        // Small passages: each stays inside one section or names the span.
        let small = try chunker(max: 24, overlap: 8, min: 4).chunk(doc)
        assertProvenance(small, of: doc)
        XCTAssertEqual(small.map(\.section), [
            "BACKGROUND", "BACKGROUND", "METHODS", "METHODS", "METHODS", "METHODS\u{2013}RESULTS", "RESULTS",
            "RESULTS", "RESULTS\u{2013}CONCLUSIONS", "CONCLUSIONS",
        ])
        XCTAssertEqual(small[5].text, "Analyses followed the method of J. K. Smith et al. (2016) and used logistic "
            + "regression.\n\nAKI developed in 81 patients (38.2%).")
        for p in small.dropLast() { XCTAssertLessThanOrEqual(wordCount(p.text), 24) }
        // Abbreviations, decimals and initials stayed inside sentences, so no passage starts there.
        for p in small {
            XCTAssertFalse(p.text.hasPrefix("K. Smith") || p.text.hasPrefix("2018") || p.text.hasPrefix("001"),
                           p.text)
        }
    }

    func testUnicodeAbstract() throws {
        let doc = document(Abstracts.unicode)
        let passages = try chunker(max: 16, overlap: 4, min: 2).chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertEqual(firstWords(passages), ["Résumé", "α-Synuclein", "Cafe\u{301}", "Ångström-scale", "mRNA", "Dr."])
        // Offsets count scalars: the first sentence is 72 scalars (71 Characters: "🐭" is 1 scalar).
        XCTAssertEqual(passages[0].end, 72)
        XCTAssertEqual(passages[1].start, 73)
        let synuclein = try XCTUnwrap(doc.text.range(of: "α-Synuclein"))
        XCTAssertEqual(passages[1].start,
                       doc.text.unicodeScalars.distance(from: doc.text.startIndex, to: synuclein.lowerBound))
        // "Cafe\u{301}" is 5 scalars, so the third passage is 1 scalar longer than its 59 Characters.
        XCTAssertEqual(passages[2].end - passages[2].start, 60)
        XCTAssertEqual(passages[2].text.count, 59)
        // The NBSP in "30\u{00A0}%" separates words: 12 words, 12 + 8 > 16, so "Ångström" starts anew.
        XCTAssertEqual(wordCount(passages[2].text), 12)
        // The first sentence has 14 words, beyond the 4-word overlap budget: no overlap.
        XCTAssertGreaterThan(passages[1].start, passages[0].end)
        XCTAssertEqual(Set(passages.map(\.section)), ["text"])
        XCTAssertTrue(passages.last!.text.hasSuffix("led the trial."))
    }

    func testLongSentenceIsCutAtWordBoundariesIntoEqualPieces() {
        let doc = document(Abstracts.longSentence)
        let passages = Chunker().chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertEqual(passages.map { wordCount($0.text) }, [125, 125, 125, 125])
        XCTAssertEqual(firstWords(passages), ["w0", "w125", "w250", "w375"])
        XCTAssertTrue(passages[0].text.hasSuffix("w124"))
        XCTAssertTrue(passages[3].text.hasSuffix("w499."))
        // Pieces of a cut sentence are never repeated as overlap.
        for i in 1..<passages.count { XCTAssertGreaterThan(passages[i].start, passages[i - 1].end) }
    }

    func testLongSentenceBetweenShortOnes() throws {
        let body = sentence(0, words: 6) + " " + (1...40).map { "X\($0)" }.joined(separator: " ") + ". "
            + sentence(2, words: 6)
        let doc = document(body)
        let passages = try chunker(max: 16, overlap: 6, min: 2).chunk(doc)
        assertProvenance(passages, of: doc)
        // S0 (6), the 40-word sentence cut into 14 + 13 + 13, then S2 (6); pieces are not carried over.
        XCTAssertEqual(firstWords(passages), ["S0", "X1", "X15", "X28", "S2"])
        XCTAssertEqual(passages.map { wordCount($0.text) }, [6, 14, 13, 13, 6])
        XCTAssertTrue(passages[3].text.hasSuffix("X40."))
    }

    func testOverlapCarriesOneWholeTrailingSentence() throws {
        let body = (0..<10).map { sentence($0, words: 6) }.joined(separator: " ")
        let doc = document(body)
        let passages = try chunker(max: 20, overlap: 8, min: 2).chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertEqual(firstWords(passages), ["S0", "S2", "S4", "S6", "S8"])
        XCTAssertEqual(passages.map { wordCount($0.text) }, [18, 18, 18, 18, 12])
        XCTAssertEqual(passages[0].text, "S0 w w w w w. S1 w w w w w. S2 w w w w w.")
        XCTAssertEqual(passages[1].start, 28)
        XCTAssertTrue(passages[0].text.hasSuffix(sentence(2, words: 6)))
    }

    func testOverlapCarriesSeveralWholeSentences() throws {
        let body = (0..<12).map { sentence($0, words: 5) }.joined(separator: " ")
        let doc = document(body)
        let passages = try chunker(max: 30, overlap: 10, min: 2).chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertEqual(firstWords(passages), ["S0", "S4", "S8"])
        XCTAssertEqual(passages.map { wordCount($0.text) }, [30, 30, 20])
    }

    func testNoOverlapWhenTrailingSentenceExceedsOverlap() throws {
        let body = (0..<10).map { sentence($0, words: 6) }.joined(separator: " ")
        let doc = document(body)
        let passages = try chunker(max: 20, overlap: 5, min: 2).chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertEqual(firstWords(passages), ["S0", "S3", "S6", "S9"])
        for i in 1..<passages.count { XCTAssertGreaterThan(passages[i].start, passages[i - 1].end) }
        XCTAssertEqual(try chunker(max: 20, overlap: 0, min: 2).chunk(doc).map(\.start), passages.map(\.start))
    }

    func testTinyTailIsMergedIntoPreviousPassage() throws {
        let body = (0..<3).map { sentence($0, words: 6) }.joined(separator: " ") + " " + sentence(3, words: 3)
        let doc = document(body)
        // Without overlap: 18 words, then a 3-word tail.
        let merged = try chunker(max: 20, overlap: 0, min: 8).chunk(doc)
        assertProvenance(merged, of: doc)
        XCTAssertEqual(merged.count, 1)
        XCTAssertEqual(merged[0].text, body)
        XCTAssertEqual(wordCount(merged[0].text), 21)
        // With overlap the tail passage holds 9 words but adds only 3 new ones: still merged.
        XCTAssertEqual(try chunker(max: 20, overlap: 8, min: 8).chunk(doc).map(\.text), [body])
        // Control: a smaller minWords keeps the tail.
        let kept = try chunker(max: 20, overlap: 0, min: 2).chunk(doc)
        XCTAssertEqual(kept.map(\.text), [(0..<3).map { sentence($0, words: 6) }.joined(separator: " "),
                                          sentence(3, words: 3)])
        XCTAssertEqual(kept.map(\.ordinal), [0, 1])
    }

    func testSentenceCrossingASectionStartIsCut() {
        // A reader that did not separate sections by a blank line.
        let body = "alpha beta gamma delta epsilon zeta"
        let doc = Document(key: "x", source: .jats, title: "T", text: body,
                           sections: [Section(name: "A", start: 0, end: 16), Section(name: "B", start: 17, end: 35)])
        let scalars = Array(body.unicodeScalars)
        XCTAssertEqual(Chunker.cut([0..<35], atSectionStarts: doc.sections, scalars), [0..<16, 17..<35])
        XCTAssertEqual(Chunker().chunk(doc).map(\.section), ["A\u{2013}B"])
    }

    func testOptionValidation() throws {
        func error(_ options: Chunker.Options) -> ChunkerError? {
            do { _ = try Chunker(options: options); return nil } catch { return error }
        }
        XCTAssertEqual(error(.init(maxWords: 15)), .maxWordsTooSmall(maxWords: 15, minimum: 16))
        XCTAssertEqual(error(.init(maxWords: 40, overlapWords: 20)), .overlapOutOfRange(overlapWords: 20, maxWords: 40))
        XCTAssertEqual(error(.init(overlapWords: -1)), .overlapOutOfRange(overlapWords: -1, maxWords: 160))
        XCTAssertEqual(error(.init(maxWords: 40, overlapWords: 4, minWords: 20)),
                       .minWordsOutOfRange(minWords: 20, maxWords: 40))
        XCTAssertEqual(error(.init(minWords: -3)), .minWordsOutOfRange(minWords: -3, maxWords: 160))
        XCTAssertNil(error(.init(maxWords: 16, overlapWords: 7, minWords: 7)))
        XCTAssertNil(error(.init()))
        XCTAssertEqual(ChunkerError.maxWordsTooSmall(maxWords: 15, minimum: 16).description,
                       "chunker maxWords must be at least 16, got 15")
        XCTAssertEqual(ChunkerError.overlapOutOfRange(overlapWords: 20, maxWords: 40).description,
                       "chunker overlapWords must be in 0..<20 (below half of maxWords 40), got 20")
    }

    func testLargeDocumentKeepsInvariants() throws {
        let paragraph = Abstracts.structured.map(\.text).joined(separator: " ") + "\n\n" + Abstracts.unicode
        let doc = document(Array(repeating: paragraph, count: 40).joined(separator: "\n\n"))
        let passages = Chunker().chunk(doc)
        assertProvenance(passages, of: doc)
        XCTAssertGreaterThan(passages.count, 40)
        for p in passages.dropLast() { XCTAssertLessThanOrEqual(wordCount(p.text), 160) }
    }
}
