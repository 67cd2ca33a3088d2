import XCTest
@testable import VectorIndex

/// The pieces behind a grounded answer: passages numbered and trimmed for the prompt, the
/// answer's citations read and checked, its figures looked up in the cited passages.
final class GroundingTests: XCTestCase {
    func hit(_ id: Int64, pmid: Int?, title: String, text: String) -> SearchHit {
        SearchHit(rank: Int(id), score: 1 / Double(id), passageID: id, documentKey: pmid.map { "pmid:\($0)" } ?? "doc\(id)", pmid: pmid,
                  title: title, section: "Abstract", text: text, year: 2020, journal: "J")
    }

    // MARK: Citations

    func testCitationParserReadsNumbersRangesAndPMIDs() {
        func parsed(_ s: String) -> [String] {
            CitationParser.parse(s).map { c in
                (c.numbers.map(String.init) + c.pmids.map { "P\($0)" }).joined(separator: ",")
            }
        }
        let cases: [(String, [String])] = [
            ("Statins reduce events [1].", ["1"]),
            ("Both agree [1, 2] and [3].", ["1,2", "3"]),
            ("See [1-3] and [2–4].", ["1,2,3", "2,3,4"]),
            ("Mixed [1; 4] [1 and 2] [1,3-4]", ["1,4", "1,2", "1,3,4"]),
            ("As shown [Passage 2] and [Source 1].", ["2", "1"]),
            ("[PMID 22572410] and [PMID: 1, 2] and [PMIDs 3, 4]", ["P22572410", "P1,P2", "P3,P4"]),
            ("reported (PMID 123) and PMID:456 and pmid 789.", ["P123", "P456", "P789"]),
            ("A bare [22572410] is a PMID", ["P22572410"]),
            ("[1, PMID 123]", ["1,P123"]),
            // Not citations.
            ("a rise of [12%] [see above] [a] [1 2] [] [-] [3-] [5-2] PMIDX1 xPMID 5", []),
            ("an unclosed [1 and a newline [2\n] done", []),
            ("nested [[1]] ok", ["1"]),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(parsed(text), expected, text)
        }
        // A huge range keeps its ends.
        XCTAssertEqual(CitationParser.parse("[1-5000]").first?.numbers, [1, 5000])
        XCTAssertEqual(CitationParser.parse("Evidence [2, 3].").first?.text, "[2, 3]")
    }

    func testCitationCheckKeepsShownPassagesAndCountsInventedOnes() {
        let shown = PromptPassages(hits: [hit(1, pmid: 11, title: "A", text: "alpha"), hit(2, pmid: 22, title: "B", text: "beta"),
                                          hit(3, pmid: 11, title: "A", text: "gamma")],
                                   budget: 1000, countTokens: { $0.count }).passages
        let check = CitationCheck(answer: "Yes [2]. Also PMID 11, not [7] nor [PMID 999]; [2, 9] and [1-2].", passages: shown)
        XCTAssertEqual(check.citedNumbers, [2, 1, 3], "PMID 11 cites both of its passages")
        XCTAssertEqual(check.invalid, ["[7]", "[PMID 999]", "9"])
        XCTAssertEqual(check.invalidCount, 3)
        XCTAssertEqual(check.citations.count, 6)
        let none = CitationCheck(answer: "Statins work.", passages: shown)
        XCTAssertEqual(none.citedNumbers, [])
        XCTAssertEqual(none.invalid, [])
        let nothingShown = CitationCheck(answer: "Statins work [1].", passages: [])
        XCTAssertEqual(nothingShown.invalid, ["[1]"], "with no passage shown every citation is invented")
    }

    // MARK: Passages

    func testPromptPassagesNumbersAndTrimsToTheBudget() {
        let count: (String) -> Int = { $0.split(whereSeparator: { $0 == " " || $0 == "\n" }).count }
        let words = { (n: Int) in (0..<n).map { "w\($0)" }.joined(separator: " ") }
        let hits = [hit(1, pmid: 11, title: "T11", text: words(40)), hit(2, pmid: nil, title: "", text: words(40)),
                    hit(3, pmid: 33, title: "T33", text: words(100)), hit(4, pmid: 44, title: "T44", text: words(10))]
        let p = PromptPassages(hits: hits, budget: 130, countTokens: count)
        XCTAssertEqual(p.passages.map(\.number), [1, 2, 3])
        XCTAssertEqual(p.passages.map(\.isCut), [false, false, true])
        XCTAssertLessThanOrEqual(p.tokens, 130)
        XCTAssertEqual(p.tokens, count(p.text))
        XCTAssertTrue(p.text.hasPrefix("[1] PMID 11 · T11\nw0 w1"), p.text)
        XCTAssertTrue(p.text.contains("\n\n[2] doc2\nw0"), "no PMID: the document key; no title: no separator")
        XCTAssertTrue(p.text.contains("[3] PMID 33 · T33\n"))
        XCTAssertTrue(p.passages[2].text.hasSuffix(" …"))
        XCTAssertGreaterThanOrEqual(p.passages[2].text.split(separator: " ").count - 1, PromptPassages.minimumWords)
        XCTAssertFalse(p.text.contains("44"))
        // The generator's style, and a stub shorter than 24 words left out.
        let q = PromptPassages(hits: hits, budget: 100, style: .pmid, countTokens: count)
        XCTAssertEqual(q.passages.count, 2, "the third passage would keep fewer than 24 words")
        XCTAssertTrue(q.text.hasPrefix("[PMID 11] T11\nw0"), q.text)
        print("passages: budget 130 -> \(p.tokens) tokens, \(p.passages.count) passages; budget 100 -> \(q.tokens) tokens")
    }

    // MARK: Figures

    func testFiguresAreReadWithUnitsAndNamesAreSkipped() {
        let text = """
        A meta-analysis of 11 studies found a 12% reduction (1.2 to 1.5% per year; 95% CI) with 40 mg \
        and 40mg/day in 1,234 patients and −0.5 points, p<.05. Type 2 diabetes, phase 3, IL-6, CD4, \
        COVID-19, 5-HT and the 3rd visit are names; a 12-week trial [3] in 2019 (PMID 12345).
        """
        let figures = FigureCheck.figures(in: text)
        XCTAssertEqual(figures.map(\.text), ["11 studies", "12%", "1.2", "1.5%", "95%", "40 mg", "40mg/day", "1,234 patients",
                                             "−0.5 points", ".05", "12-week", "2019"])
        XCTAssertEqual(figures.map(\.value), [11, 12, 1.2, 1.5, 95, 40, 40, 1234, 0.5, 0.05, 12, 2019])
        // List markers are not figures; a number ending a sentence is.
        XCTAssertEqual(FigureCheck.figures(in: "Patterns:\n10. Fewer visits.\n 11) More doubt.\nIt was 12.\n13.5 mg").map(\.text), ["12", "13.5 mg"])
    }

    func testUnsupportedFiguresAgainstRealLookingPassages() {
        let passages = [
            """
            Statin therapy reduced major vascular events by 21% per 1.0 mmol/L reduction in LDL cholesterol \
            (rate ratio 0.79, 95% CI 0.77–0.81) across 27 randomised trials including 174\u{2009}149 participants.
            """,
            """
            Among adults older than 75 years, the absolute risk reduction was 1·2% over 4.9 years; myopathy \
            occurred in \u{2212}0.3 to 0.5 per 10,000 person-years.
            """,
        ]
        let answer = """
        Statins cut vascular events by 21.0% [1] (RR .79) in 174,149 participants from 27 trials, \
        an absolute reduction of 1.2% in adults over 75 [2], with myopathy at -0.3 per 10000 person-years. \
        A meta-analysis of 11 studies found a 1.5% yearly fall, with 40 mg atorvastatin.
        """
        let unsupported = FigureCheck.unsupported(answer: answer, evidence: passages)
        print("unsupported: \(unsupported)")
        XCTAssertEqual(unsupported, ["11 studies", "1.5%", "40 mg"])
        XCTAssertEqual(FigureCheck.unsupported(answer: "About 12.3% [1].", evidence: ["12.34% of patients"]), ["12.3%"],
                       "rounding is not undone")
        XCTAssertEqual(FigureCheck.unsupported(answer: "No figures here [1].", evidence: []), [])
    }
}
