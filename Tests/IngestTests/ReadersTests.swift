import XCTest
@testable import Ingest

/// Tests of ``JATSReader``, ``TextReader`` and ``JSONLReader`` on hand-made fixtures
/// (`Fixtures/readers/`) and on the eight real PMC articles that `scripts/setup` puts in `data/pmc/`.
final class ReadersTests: XCTestCase {
    // MARK: Helpers

    private static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        .appendingPathComponent("readers")
    /// The repository root, from this file's path (Tests/IngestTests/ReadersTests.swift).
    private static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private var tempDir: URL!

    override func setUpWithError() throws {
        tempDir = FileManager.default.temporaryDirectory.appendingPathComponent("ReadersTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tempDir)
    }

    private func fixture(_ name: String) -> String { Self.fixtures.appendingPathComponent(name).path }

    /// Writes `bytes` to a fresh file in the test's temporary directory.
    private func temp(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = tempDir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func temp(_ name: String, _ text: String) throws -> String { try temp(name, Array(text.utf8)) }

    /// All documents `reader` emits for `file`.
    private func documents(_ reader: some DocumentReader, _ file: String) throws -> [Document] {
        var docs: [Document] = []
        try reader.read(file: file) { item in
            guard case let .document(d) = item else { return XCTFail("unexpected item \(item)") }
            docs.append(d)
        }
        return docs
    }

    /// The one document of `file`.
    private func document(_ reader: some DocumentReader, _ file: String) throws -> Document {
        let docs = try documents(reader, file)
        XCTAssertEqual(docs.count, 1, file)
        return try XCTUnwrap(docs.first)
    }

    /// Section name -> its text, in order.
    private func sections(_ doc: Document) -> [(name: String, text: String)] {
        let scalars = Array(doc.text.unicodeScalars)
        return doc.sections.map { s in
            (s.name, String(String.UnicodeScalarView(scalars[s.start..<s.end])))
        }
    }

    private func text(of name: String, in doc: Document) -> String? {
        sections(doc).first { $0.name == name }?.text
    }

    /// Section ranges lie inside the text, in order, without overlap, and are not empty.
    private func assertWellFormedSections(_ doc: Document, file: StaticString = #filePath, line: UInt = #line) {
        let n = doc.text.unicodeScalars.count
        var previousEnd = 0
        for s in doc.sections {
            XCTAssertFalse(s.name.isEmpty, "\(doc.key): unnamed section", file: file, line: line)
            XCTAssertLessThan(s.start, s.end, "\(doc.key): empty section \(s.name)", file: file, line: line)
            XCTAssertGreaterThanOrEqual(s.start, previousEnd, "\(doc.key): \(s.name) overlaps", file: file, line: line)
            XCTAssertLessThanOrEqual(s.end, n, "\(doc.key): \(s.name) ends past the text", file: file, line: line)
            previousEnd = s.end
        }
    }

    // MARK: JATS fixture

    func testJATSMetadata() throws {
        let doc = try document(JATSReader(), fixture("article.nxml"))
        XCTAssertEqual(doc.key, "PMC6543210")
        XCTAssertEqual(doc.source, .jats)
        XCTAssertEqual(doc.pmid, 31234567)
        XCTAssertEqual(doc.pmcid, "PMC6543210")
        XCTAssertEqual(doc.doi, "10.1234/jtb.2019.042")
        // Inline markup kept, the character reference decoded, the line break and spaces collapsed.
        XCTAssertEqual(doc.title, "Effects of Escherichia coli on β-cell growth in 13C media")
        XCTAssertEqual(doc.journal, "Journal of Test Biology")
        XCTAssertEqual(doc.journalAbbrev, "J Test Biol")
        // The first pub-date (2019), not the later one (2020) nor the history date (2018).
        XCTAssertEqual(doc.year, 2019)
        XCTAssertEqual(doc.keywords, ["cell growth", "E. coli"])
        XCTAssertEqual(doc.publicationTypes, ["research-article"])
        XCTAssertEqual(doc.file, fixture("article.nxml"))
        // <article> is on line 3; XMLReader.line is the parser's position, which may have read ahead.
        XCTAssertEqual(doc.line, 3, "line of the <article> start tag")
    }

    func testJATSSectionsInOrder() throws {
        let doc = try document(JATSReader(), fixture("article.nxml"))
        assertWellFormedSections(doc)
        let got = sections(doc)
        let expected: [(String, String)] = [
            ("Abstract / Background", "We asked whether café culture & growth interact."),
            ("Abstract / Results", "Growth rose by 12 % (p < 0.05)."),
            ("Author Summary", "A plain summary."),
            ("Body", "An opening paragraph outside any section."),
            ("Introduction", "First paragraph cites [1] and shows that it continues.\nSecond paragraph with bold and H2O."),
            ("Methods", "General methods."),
            ("Methods / Cell culture", "Energy is E=mc2 here.\nDisplay: x+y done.\nLone TeX a^2 end."),
            ("Methods / Statistics", "Unicode: naïve Δ 日本語 — fine. Raw a < b & c kept.\nitem one\nitem two"),
            ("Appendix A", "Derivation details."),
            ("Figure 1", "Growth curves.\nCells grown at 37°C."),
            ("Table 1", "Strains used."),
        ]
        XCTAssertEqual(got.map(\.name), expected.map(\.0))
        for ((name, text), want) in zip(got, expected) {
            XCTAssertEqual(text, want.1, "section \(name)")
        }
        XCTAssertEqual(doc.text, expected.map(\.1).joined(separator: "\n\n"))
    }

    func testJATSSkipsReferencesTablesAndBoilerplate() throws {
        let doc = try document(JATSReader(), fixture("article.nxml"))
        for noise in ["NOISE", "Running head", "Müller", "Keywords", "References", "documentclass", "(1)", "Supplementary"] {
            XCTAssertFalse(doc.text.contains(noise), "text contains \(noise)")
        }
        // Unicode spaces (U+00A0, U+200A) became plain spaces.
        XCTAssertFalse(doc.text.unicodeScalars.contains { $0 == "\u{A0}" || $0 == "\u{200A}" })
    }

    func testJATSKeyFallsBackToPMIDThenFileName() throws {
        let head = #"<?xml version="1.0"?><article><front><article-meta>"#
        let tail = #"<title-group><article-title>T</article-title></title-group></article-meta></front>"#
            + "<body><p>x</p></body></article>"
        let pmcPrefixed = try temp("a.nxml", head + #"<article-id pub-id-type="pmcid">PMC777</article-id>"# + tail)
        let pmidOnly = try temp("b.nxml", head + #"<article-id pub-id-type="pmid">4242</article-id>"# + tail)
        let noIDs = try temp("c.nxml", head + tail)

        let a = try document(JATSReader(), pmcPrefixed)
        XCTAssertEqual(a.key, "PMC777")
        XCTAssertEqual(a.pmcid, "PMC777")
        let b = try document(JATSReader(), pmidOnly)
        XCTAssertEqual(b.key, "4242")
        XCTAssertEqual(b.pmid, 4242)
        XCTAssertNil(b.pmcid)
        let c = try document(JATSReader(), noIDs)
        XCTAssertEqual(c.key, "c.nxml")
        XCTAssertNil(c.pmid)
        XCTAssertEqual(sections(c).map(\.name), ["Body"])
    }

    func testNotJATSNamesTheRootElement() throws {
        let file = fixture("not-jats.xml")
        XCTAssertThrowsError(try documents(JATSReader(), file)) { error in
            XCTAssertEqual(error as? IngestError, .notJATS(file: file, rootElement: "PubmedArticleSet"))
        }
    }

    func testMalformedJATSReportsLineAndColumn() throws {
        let file = fixture("malformed.nxml")
        var emitted = 0
        XCTAssertThrowsError(try JATSReader().read(file: file) { _ in emitted += 1 }) { error in
            guard case let .malformedXML(f, line, column, message, _) = error as? IngestError else {
                return XCTFail("expected malformedXML, got \(error)")
            }
            XCTAssertEqual(f, file)
            XCTAssertEqual(line, 6)
            XCTAssertGreaterThan(column, 0)
            XCTAssertTrue(message.contains("mismatch"), message)
        }
        XCTAssertEqual(emitted, 0)
    }

    func testMissingFileCannotOpen() throws {
        let missing = tempDir.appendingPathComponent("missing.nxml").path
        let readers: [any DocumentReader] = [JATSReader(), TextReader(), JSONLReader()]
        for reader in readers {
            XCTAssertThrowsError(try reader.read(file: missing) { _ in }) { error in
                guard case let .cannotOpen(file, _) = error as? IngestError else {
                    return XCTFail("\(type(of: reader)): expected cannotOpen, got \(error)")
                }
                XCTAssertEqual(file, missing)
            }
        }
        // A directory is not a file either.
        XCTAssertThrowsError(try TextReader().read(file: tempDir.path) { _ in })
        XCTAssertThrowsError(try JSONLReader().read(file: tempDir.path) { _ in })
    }

    // MARK: Real PMC articles

    private func pmcFiles() throws -> [String] {
        let dir = Self.repoRoot.appendingPathComponent("data/pmc")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let files = names.filter { $0.hasSuffix(".nxml") }.sorted().map { dir.appendingPathComponent($0).path }
        XCTAssertEqual(files.count, 8, "expected the 8 PMC articles in \(dir.path): run scripts/setup")
        return files
    }

    private func pmc(_ name: String) throws -> Document {
        try document(JATSReader(), Self.repoRoot.appendingPathComponent("data/pmc/\(name)").path)
    }

    func testRealPMCFilesAllParse() throws {
        var keys: Set<String> = []
        for file in try pmcFiles() {
            let doc = try document(JATSReader(), file)
            XCTAssertTrue(doc.key.hasPrefix("PMC") && Int(doc.key.dropFirst(3)) != nil, "\(file): key \(doc.key)")
            XCTAssertEqual(doc.key, doc.pmcid)
            XCTAssertNotNil(doc.pmid, file)
            XCTAssertNotNil(doc.doi, file)
            XCTAssertNotNil(doc.journal, file)
            XCTAssertTrue((2000...2020).contains(doc.year ?? 0), "\(file): year \(String(describing: doc.year))")
            XCTAssertFalse(doc.title.isEmpty, file)
            XCTAssertGreaterThan(doc.sections.count, 5, file)
            assertWellFormedSections(doc)
            let names = doc.sections.map(\.name)
            XCTAssertTrue(names.first?.hasPrefix("Abstract") ?? false, "\(file): first section \(names.first ?? "-")")
            XCTAssertTrue(names.contains { $0.hasPrefix("Figure") || $0.hasPrefix("Table") }, "\(file): no captions")
            XCTAssertGreaterThan(doc.text.count, 5000, file)
            keys.insert(doc.key)
        }
        XCTAssertEqual(keys.count, 8)
    }

    func testRealPMCLysisTimeArticle() throws {
        let doc = try pmc("1471-2180-11-174.nxml")
        XCTAssertEqual(doc.key, "PMC3166277")
        XCTAssertEqual(doc.pmid, 21810267)
        XCTAssertEqual(doc.doi, "10.1186/1471-2180-11-174")
        XCTAssertEqual(doc.title, "Factors influencing lysis time stochasticity in bacteriophage λ")
        XCTAssertEqual(doc.journal, "BMC Microbiology")
        XCTAssertEqual(doc.journalAbbrev, "BMC Microbiol")
        XCTAssertEqual(doc.year, 2011)
        let names = doc.sections.map(\.name)
        XCTAssertEqual(Array(names.prefix(4)), ["Abstract / Background", "Abstract / Results", "Abstract / Conclusions", "Background"])
        for name in ["Results / Effect of allelic variation in holin sequence", "Methods / Statistical analysis",
                     "Figure 4", "Table 3"] {
            XCTAssertTrue(names.contains(name), "missing section \(name)")
        }
        // References and acknowledgements (in <back>) are not text.
        XCTAssertFalse(names.contains("Acknowledgements"))
        XCTAssertFalse(doc.text.contains("Microbial cell individuality"))
        XCTAssertFalse(doc.text.contains("Tom Caraco"))
    }

    func testRealPMCInlineMarkupAndEntities() throws {
        let tb = try pmc("pone.0046493.nxml")
        XCTAssertEqual(tb.key, "PMC3460867")
        XCTAssertEqual(tb.title, "MmPPOX Inhibits Mycobacterium tuberculosis Lipolytic Enzymes Belonging to the "
            + "Hormone-Sensitive Lipase Family and Alters Mycobacterial Growth")
        XCTAssertTrue(text(of: "Introduction", in: tb)?.hasPrefix("According to the World Health Organization (2011;") ?? false)
        XCTAssertTrue(text(of: "Figure 1", in: tb)?.hasPrefix("Chemical structure of inhibitors.\nChemical structures of") ?? false)

        let ehp = try pmc("ehp-116-1694.nxml")
        XCTAssertEqual(ehp.title, "Dietary Exposure to 2,2′,4,4′-Tetrabromodiphenyl Ether (PBDE-47) Alters Thyroid "
            + "Status and Thyroid Hormone–Regulated Gene Transcription in the Pituitary and Brain")
        XCTAssertEqual(ehp.keywords.count, 9)
        XCTAssertEqual(ehp.keywords.first, "basic transcription element-binding protein")
        XCTAssertEqual(ehp.year, 2008)
    }

    func testRealPMCAbstractsTablesAndBack() throws {
        let rvf = try pmc("pntd.0002065.nxml")
        XCTAssertEqual(rvf.key, "PMC3585041")
        XCTAssertTrue(rvf.title.contains("Zambézia Province, Mozambique"))
        XCTAssertEqual(Array(rvf.sections.map(\.name).prefix(3)), ["Abstract", "Author Summary", "Introduction"])
        XCTAssertFalse(rvf.text.contains("29.7, 49.5"), "a table cell leaked into the text")
        XCTAssertTrue(rvf.sections.contains { $0.name == "Table 5" })

        let stage = try pmc("mds526.nxml")
        XCTAssertEqual(stage.key, "PMC3574550")
        XCTAssertTrue(stage.sections.contains { $0.name == "methods / data" })
        XCTAssertTrue(stage.sections.contains { $0.name == "Table 1" }, "label 'Table 1.' is trimmed")

        let oc = try pmc("6605965a.nxml")
        XCTAssertEqual(oc.key, "PMC2994229")
        XCTAssertEqual(oc.keywords, ["oral contraceptives", "reproductive history", "colorectal cancer", "cohort study"])
        XCTAssertFalse(oc.text.contains("The coordination of EPIC is financially supported"))
        XCTAssertTrue(oc.sections.contains { $0.name == "Body" }, "text before the first sec")
    }

    // MARK: Text and Markdown

    func testMarkdownSplitsAtHeadings() throws {
        let doc = try document(TextReader(), fixture("notes.md"))
        XCTAssertEqual(doc.key, "notes.md")
        XCTAssertEqual(doc.source, .text)
        XCTAssertEqual(doc.title, "Sleep and Memory")
        assertWellFormedSections(doc)
        let got = sections(doc)
        XCTAssertEqual(got.map(\.name), ["text", "Sleep and Memory", "Methods", "Results"])
        XCTAssertEqual(got[0].text, "Intro text before any heading.")
        // Blank-line runs collapsed to one.
        XCTAssertEqual(got[1].text, "The first section's text.\nIt has two lines.")
        // A '#' line inside a fenced code block is text, not a heading.
        XCTAssertEqual(got[2].text, "We measured things.\n\n```bash\n# not a heading inside a fence\necho hi\n```")
        // Trailing spaces cut; '#hashtag' (no space) is not a heading.
        XCTAssertEqual(got[3].text, "Results text.\n#hashtag is not a heading")
    }

    func testPlainTextWithCRLF() throws {
        let doc = try document(TextReader(), fixture("plain.txt"))
        XCTAssertEqual(doc.key, "plain.txt")
        XCTAssertEqual(doc.title, "plain")
        XCTAssertEqual(sections(doc).map(\.name), ["text"])
        XCTAssertEqual(doc.text, "plain line one\nplain line two\n\nafter blank lines")
    }

    func testEmptyTextFilesYieldNoDocument() throws {
        XCTAssertEqual(try documents(TextReader(), fixture("empty.txt")).count, 0)
        XCTAssertEqual(try documents(TextReader(), try temp("blank.txt", " \n\t\n\n")).count, 0)
        XCTAssertEqual(try documents(TextReader(), try temp("headings.md", "# Only\n\n## Headings\n")).count, 0)
        XCTAssertEqual(try documents(TextReader(), try temp("one.txt", "x")).count, 1)
    }

    func testTextInvalidUTF8IsReplacedAndBOMDropped() throws {
        var bytes: [UInt8] = [0xEF, 0xBB, 0xBF]  // BOM: without dropping it, the heading would not be one
        bytes += Array("# Caf".utf8) + [0xFF] + Array("\nbody ".utf8) + [0xC3, 0x28] + Array(" end\n".utf8)
        let doc = try document(TextReader(), try temp("bad.md", bytes))
        XCTAssertEqual(doc.title, "Caf\u{FFFD}")
        XCTAssertEqual(doc.text, "body \u{FFFD}( end")
        XCTAssertEqual(doc.sections.map(\.name), ["Caf\u{FFFD}"])
    }

    func testMarkdownTitleFallsBackToFileStem() throws {
        let doc = try document(TextReader(), try temp("report.v2.md", "## Setup ##\n\nSome text.\n"))
        XCTAssertEqual(doc.title, "report.v2")
        XCTAssertEqual(doc.key, "report.v2.md")
        XCTAssertEqual(sections(doc).map(\.name), ["Setup"])
    }

    // MARK: JSONL

    func testJSONLGoodLines() throws {
        let docs = try documents(JSONLReader(), fixture("records.jsonl"))
        XCTAssertEqual(docs.map(\.key), ["12345", "678", "doc-a"])
        XCTAssertEqual(docs.map(\.pmid), [12345, 678, nil])
        XCTAssertEqual(docs.map(\.title), ["First record", "", ""])
        XCTAssertEqual(docs.map(\.line), [1, 3, 4], "line numbers count the blank line")
        XCTAssertEqual(docs.map(\.year), [nil, 2021, 2019])
        XCTAssertEqual(docs.map(\.journal), [nil, "J Test", nil])
        XCTAssertEqual(docs.map(\.source), [.jsonl, .jsonl, .jsonl])
        XCTAssertEqual(docs[2].text, "Unicode: café 日本語 é\n second line")
        for doc in docs {
            XCTAssertEqual(doc.sections, [Section(name: "text", start: 0, end: doc.text.unicodeScalars.count)])
        }
    }

    func testJSONLBadLineThreeStopsAfterGoodOnes() throws {
        let file = fixture("bad-line3.jsonl")
        var keys: [String] = []
        XCTAssertThrowsError(try JSONLReader().read(file: file) { item in
            if case let .document(d) = item { keys.append(d.key) }
        }) { error in
            guard case let .badJSONLine(f, line, message) = error as? IngestError else {
                return XCTFail("expected badJSONLine, got \(error)")
            }
            XCTAssertEqual(f, file)
            XCTAssertEqual(line, 3)
            XCTAssertTrue(message.contains("missing \"text\""), message)
        }
        XCTAssertEqual(keys, ["1", "2"])
    }

    func testJSONLErrorMessagesNameTheProblem() throws {
        let cases: [(line: String, message: String)] = [
            (#"{"id": "x", "text": "#, "invalid JSON: Unexpected end of file"),
            (#"{"id": x, "text": "t"}"#, "invalid JSON: Invalid value around character 7"),
            (#"[1, 2]"#, "expected a JSON object"),
            (#"{"text": "t"}"#, "missing \"id\""),
            (#"{"id": null, "text": "t"}"#, "missing \"id\""),
            (#"{"id": true, "text": "t"}"#, "\"id\" must be a string or an integer"),
            (#"{"id": 1.5, "text": "t"}"#, "\"id\" must be a string or an integer"),
            (#"{"id": "", "text": "t"}"#, "\"id\" is empty"),
            (#"{"id": "a", "text": null}"#, "missing \"text\""),
            (#"{"id": "a", "text": 5}"#, "\"text\" must be a string"),
            (#"{"id": "a", "text": "t", "title": 3}"#, "\"title\" must be a string"),
        ]
        for (k, c) in cases.enumerated() {
            let file = try temp("case\(k).jsonl", "{\"id\": 1, \"text\": \"ok\"}\n\n" + c.line + "\n")
            XCTAssertThrowsError(try documents(JSONLReader(), file), c.line) { error in
                guard case let .badJSONLine(_, line, message) = error as? IngestError else {
                    return XCTFail("\(c.line): expected badJSONLine, got \(error)")
                }
                XCTAssertEqual(line, 3, c.line)
                XCTAssertTrue(message.contains(c.message), "\(c.line): message \(message)")
            }
        }
    }

    func testJSONLAcceptsBOMCRLFAndNoFinalNewline() throws {
        // Line 2 is blank once its CR is cut; the last line has no LF.
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("{\"id\":\"a\",\"text\":\"x\"}\r\n  \r\n{\"id\":\"b\",\"text\":\"y\"}".utf8)
        let docs = try documents(JSONLReader(), try temp("crlf.jsonl", bytes))
        XCTAssertEqual(docs.map(\.key), ["a", "b"])
        XCTAssertEqual(docs.map(\.text), ["x", "y"])
        XCTAssertEqual(docs.map(\.line), [1, 3])
    }

    func testEmitErrorStopsTheReader() throws {
        struct Stop: Error {}
        var count = 0
        XCTAssertThrowsError(try JSONLReader().read(file: fixture("records.jsonl")) { _ in
            count += 1
            throw Stop()
        }) { error in XCTAssertTrue(error is Stop, "\(error)") }
        XCTAssertEqual(count, 1)
    }
}
