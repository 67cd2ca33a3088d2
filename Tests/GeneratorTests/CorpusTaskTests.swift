import Foundation
import Ingest
import TestSupport
import XCTest
@testable import Generator

/// `CorpusTaskMiner` on real PubMed records (`corpora/samples/pubmed_xml`): every answer is text
/// of its own document, and no input gives its answer away.
final class CorpusTaskTests: XCTestCase {
    func testConclusionTaskOfAStructuredAbstract() throws {
        let doc = try XCTUnwrap(try samplePubMed("pubmed-29768149.xml").first { $0.pmid == 29768149 })
        let tasks = CorpusTaskMiner(kinds: [.conclusion, .title]).tasks(in: doc)
        XCTAssertEqual(tasks.map(\.kind), [.conclusion, .title])
        let c = tasks[0]
        XCTAssertTrue(c.output.hasPrefix("In patients with mild asthma, as-needed budesonide-formoterol provided superior"), c.output)
        XCTAssertEqual(c.sections, ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"])
        XCTAssertTrue(c.input.hasPrefix("Title: Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma.\n\nBACKGROUND: "), c.input)
        XCTAssertTrue(c.input.contains("\nRESULTS: A total of 3849 patients"))
        XCTAssertFalse(c.input.contains(c.output), "the context must not contain its conclusion")
        XCTAssertEqual(c.pmid, 29768149)
        XCTAssertEqual(tasks[1].output, "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma.")
        XCTAssertFalse(tasks[1].input.contains("Inhaled Combined"))
    }

    func testEveryTaskIsGroundedInItsDocument() throws {
        let docs = try samplePubMed("qi29_main_finding_pubmed_result.xml") + samplePubMed("xizhou_pubMR_pubmed_result.xml")
        let miner = CorpusTaskMiner()
        var counts: [CorpusTaskMiner.Kind: Int] = [:], labels: [String: Int] = [:]
        for doc in docs {
            let tasks = miner.tasks(in: doc)
            XCTAssertLessThanOrEqual(tasks.filter { $0.kind == .inference }.count, 2, doc.key)
            for t in tasks {
                counts[t.kind, default: 0] += 1
                XCTAssertEqual(t.documentKey, doc.key)
                switch t.kind {
                case .conclusion:
                    XCTAssertTrue(doc.text.contains(t.output), "conclusion of \(doc.key) is its own text")
                    XCTAssertFalse(t.input.contains(t.output), doc.key)
                case .title:
                    XCTAssertEqual(t.output, doc.title.trimmingCharacters(in: .whitespacesAndNewlines))
                case .inference:
                    labels[t.output, default: 0] += 1
                    XCTAssertTrue(["yes", "no", "maybe"].contains(t.output))
                    let lines = t.input.components(separatedBy: "\n")
                    XCTAssertEqual(lines.count, 2)
                    XCTAssertTrue(lines[0].hasPrefix("First: ") && lines[1].hasPrefix("Second: "), t.input)
                    let first = String(lines[0].dropFirst("First: ".count)), second = String(lines[1].dropFirst("Second: ".count))
                    XCTAssertTrue(doc.text.contains(first), "\(doc.key): \(first)")
                    XCTAssertGreaterThanOrEqual(second.count, 50 - "However, ".count)
                    XCTAssertNil(CorpusTaskMiner.strippingConnector(second), "the connector is removed: \(second)")
                case .entities, .relation, .cloze:
                    XCTFail("\(t.kind) needs a lexicon and none was given")
                }
            }
        }
        print("mined from \(docs.count) records: \(counts.sorted { $0.key.rawValue < $1.key.rawValue }), inference labels \(labels)")
        XCTAssertGreaterThanOrEqual(counts[.conclusion] ?? 0, 30)
        XCTAssertGreaterThanOrEqual(counts[.inference] ?? 0, 20)
        XCTAssertGreaterThan(labels["no"] ?? 0, 0)
        XCTAssertGreaterThan(labels["yes"] ?? 0, 0)
    }

    func testConnectors() {
        XCTAssertEqual(CorpusTaskMiner.strippingConnector("However, the effect was small.")?.0, "The effect was small.")
        XCTAssertEqual(CorpusTaskMiner.strippingConnector("However, the effect was small.")?.1, "no")
        XCTAssertEqual(CorpusTaskMiner.strippingConnector("Therefore, mRNA levels rose.")?.0, "mRNA levels rose.")
        XCTAssertEqual(CorpusTaskMiner.strippingConnector("In addition, mRNA levels rose.")?.1, "maybe")
        XCTAssertNil(CorpusTaskMiner.strippingConnector("Howevers, no."))
        XCTAssertNil(CorpusTaskMiner.strippingConnector("The effect was small."))
        XCTAssertTrue(CorpusTaskMiner.isConclusion("Conclusions and Relevance"))
        XCTAssertFalse(CorpusTaskMiner.isConclusion("RESULTS"))
    }
}
