import XCTest
@testable import Ingest

final class PubMedReaderTests: XCTestCase {
    func testStructuredAbstractFieldsAndInlineMarkup() throws {
        let docs = try readPubMed(Paths.fixture("structured.xml")).compactMap(\.document)
        XCTAssertEqual(docs.map(\.key), ["9000001", "9000002", "9000003"])
        let d = docs[0]
        XCTAssertEqual(d.pmid, 9000001)
        XCTAssertEqual(d.version, 1)
        XCTAssertEqual(d.source, .pubmed)
        XCTAssertEqual(d.title, "Effect of Escherichia coli β-lactamase on CO2 & O2 uptake in café workers.")
        XCTAssertEqual(d.sections.map(\.name), ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"])
        let scalars = Array(d.text.unicodeScalars)
        func sectionText(_ i: Int) -> String {
            var s = String.UnicodeScalarView(); s.append(contentsOf: scalars[d.sections[i].start..<d.sections[i].end]); return String(s)
        }
        XCTAssertEqual(sectionText(0), "Resistance to β-lactams is rising (p < 0.05). E. coli strains were studied, e.g. ST131.")
        XCTAssertEqual(sectionText(1), "We measured 3.5 mg/kg doses in 103 colonies; see Fig. 2.")
        XCTAssertEqual(sectionText(2), "Uptake rose by 42% when x=2 (Δ α 😀).")
        XCTAssertEqual(sectionText(3), "The effect is real.")
        XCTAssertEqual(d.journal, "Journal of Hand-made Fixtures")
        XCTAssertEqual(d.journalAbbrev, "J Hand Fixt")
        XCTAssertEqual(d.year, 2021)
        XCTAssertEqual(d.language, "eng")
        XCTAssertEqual(d.publicationTypes, ["Journal Article", "Randomized Controlled Trial"])
        XCTAssertEqual(d.mesh, [
            MeshHeading(descriptor: "Escherichia coli", ui: "D004926", majorTopic: true, qualifiers: ["drug effects", "metabolism"]),
            MeshHeading(descriptor: "Humans", ui: "D006801", majorTopic: false),
            MeshHeading(descriptor: "beta-Lactamases", ui: "D001618", majorTopic: true),
        ])
        XCTAssertEqual(d.keywords, ["antibiotic resistance", "café"])
        XCTAssertEqual(d.doi, "10.1000/fixture.2021.001")
        XCTAssertEqual(d.pmcid, "PMC9000001")
        XCTAssertEqual(d.line, 4, "line of the <PubmedArticle> start tag")
    }

    func testMedlineDateNoAbstractAndVersion() throws {
        let docs = try readPubMed(Paths.fixture("structured.xml")).compactMap(\.document)
        XCTAssertEqual(docs[1].year, 1998, "first year of MedlineDate '1998 Dec-1999 Jan'")
        XCTAssertEqual(docs[1].text, "")
        XCTAssertEqual(docs[1].sections, [])
        XCTAssertEqual(docs[1].language, "fre")
        XCTAssertEqual(docs[2].version, 2)
        XCTAssertEqual(docs[2].sections.map(\.name), ["abstract"])
        XCTAssertEqual(docs[2].text, "An unlabelled abstract. It has two sentences.")
    }

    func testGzipGivesSameDocumentsAsPlainXML() throws {
        let plain = try readPubMed(Paths.fixture("structured.xml")).compactMap(\.document)
        var gz = try readPubMed(Paths.fixture("structured.xml.gz")).compactMap(\.document)
        for i in gz.indices { gz[i].file = plain[i].file }
        XCTAssertEqual(plain, gz)
    }

    func testOldMedlineCitationSetSchemaWithDeletion() throws {
        let items = try readPubMed(Paths.fixture("medline_old.xml"))
        XCTAssertEqual(items.compactMap(\.document).map(\.key), ["8000001", "8000002"])
        let d = items[0].document!
        XCTAssertEqual(d.year, 2007)
        XCTAssertEqual(d.journalAbbrev, "Old Sch. J.")
        XCTAssertEqual(d.sections.map(\.name), ["PURPOSE", "RESULTS"])
        XCTAssertEqual(d.mesh.first?.descriptor, "Calcimycin")
        XCTAssertEqual(items.last?.deletion?.pmids, [8000001])
    }

    func testDeleteCitationInPubmedArticleSet() throws {
        let items = try readPubMed(Paths.fixture("update.xml"))
        XCTAssertEqual(items.count, 3)
        XCTAssertEqual(items[2].deletion?.pmids, [9000002, 9999999])
        XCTAssertEqual(items[2].deletion?.line, 23)
    }

    func testMalformedXMLNamesFileLineColumnAndLastPMID() throws {
        var got: [String] = []
        XCTAssertThrowsError(try PubMedReader().read(file: Paths.fixture("malformed.xml")) { item in
            if let d = item.document { got.append(d.key) }
        }) { error in
            guard case let IngestError.malformedXML(file, line, column, message, pmid) = error else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertTrue(file.hasSuffix("malformed.xml"))
            XCTAssertEqual(line, 11)
            XCTAssertGreaterThan(column, 0)
            XCTAssertTrue(message.contains("ArticleTitle"), message)
            XCTAssertEqual(pmid, 7000002)
            XCTAssertTrue("\(error)".contains("malformed.xml:11:"), "\(error)")
        }
        XCTAssertEqual(got, ["7000001"], "records before the error are delivered")
    }

    func testTruncatedGzipIsReportedAsSuch() throws {
        XCTAssertThrowsError(try readPubMed(Paths.fixture("truncated.xml.gz"))) { error in
            guard case let IngestError.malformedXML(_, line, _, message, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("truncated gzip"), message)
            XCTAssertGreaterThan(line, 1)
        }
    }

    func testNotPubMedNamesTheRootElement() throws {
        XCTAssertThrowsError(try readPubMed(Paths.fixture("notpubmed.xml"))) { error in
            XCTAssertEqual(error as? IngestError, .notPubMed(file: Paths.fixture("notpubmed.xml"), rootElement: "catalog"))
            XCTAssertTrue("\(error)".hasPrefix("no PubmedArticle in "), "\(error)")
        }
    }

    func testMissingAndEmptyFiles() throws {
        XCTAssertThrowsError(try readPubMed("/nonexistent/file.xml")) { error in
            guard case IngestError.cannotOpen(let file, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "/nonexistent/file.xml")
        }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(getpid()).xml").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: empty) }
        XCTAssertThrowsError(try readPubMed(empty)) { error in
            switch error as? IngestError {
            case .notPubMed?, .malformedXML?: break
            default: XCTFail("\(error)")
            }
        }
    }

    func testRealPubMedFilesHaveTheirExactArticleCounts() throws {
        let dir = Paths.pubmedSamples
        let expected = ["medline16n0902.xml.gz": 604, "pubmed-29768149.xml": 1,
                        "qi29_main_finding_pubmed_result.xml": 121, "xizhou_pubMR_pubmed_result.xml": 93]
        for (name, count) in expected {
            let items = try readPubMed(dir.appendingPathComponent(name).path)
            let docs = items.compactMap(\.document)
            XCTAssertEqual(docs.count, count, name)
            XCTAssertTrue(docs.allSatisfy { $0.pmid != nil && !$0.title.isEmpty }, name)
        }
        let one = try readPubMed(dir.appendingPathComponent("pubmed-29768149.xml").path)[0].document!
        XCTAssertEqual(one.title, "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma.")
        XCTAssertEqual(one.journalAbbrev, "N Engl J Med")
        XCTAssertEqual(one.year, 2018)
        XCTAssertEqual(one.doi, "10.1056/NEJMoa1715274")
        XCTAssertTrue(one.mesh.contains(MeshHeading(descriptor: "Asthma", ui: "D001249", majorTopic: true, qualifiers: ["drug therapy"])))
        let medline = try readPubMed(dir.appendingPathComponent("medline16n0902.xml.gz").path)
        XCTAssertEqual(medline.compactMap(\.deletion).flatMap(\.pmids), [26432306])
    }

    func testMedlineDateYearParsing() {
        XCTAssertEqual(PubMedDate.firstYear(in: "1998 Dec-1999 Jan"), 1998)
        XCTAssertEqual(PubMedDate.firstYear(in: "Winter 2007"), 2007)
        XCTAssertEqual(PubMedDate.firstYear(in: "ca. 0999-2001"), 2001)
        XCTAssertNil(PubMedDate.firstYear(in: "Spring"))
    }
}
