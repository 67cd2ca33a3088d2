import Evaluation
import Foundation
import Ingest
import TestSupport
import XCTest
@testable import Generator

/// The entity-shaped mined kinds (`entities`, `relation`, `cloze`) with lexicons read from the
/// repository's BC5CDR train splits, on real PubMed records (`corpora/samples/pubmed_xml`).
final class LexiconTaskTests: XCTestCase {
    func testLexiconMatchesWholeTokensLongestFirst() {
        let lexicon = EntityLexicon(type: "Chemical", mentions: ["5 - fluorouracil", "cisplatin", "nitric", "nitric oxide", "Na", "12"])
        XCTAssertEqual(lexicon.names.count, 4, "names shorter than 3 characters and numbers are skipped")
        let text = "Treatment with 5-fluorouracil and Cisplatin raised nitric oxide, not cisplatinum."
        XCTAssertEqual(lexicon.mentions(in: text).map { String(text[$0]) }, ["5-fluorouracil", "Cisplatin", "nitric oxide"])
        let merged = EntityLexicon.merging([lexicon, EntityLexicon(type: "Disease", mentions: ["asthma"]),
                                            EntityLexicon(type: "Chemical", mentions: ["ethanol", "cisplatin"])])
        XCTAssertEqual(merged.map(\.type), ["Chemical", "Disease"])
        XCTAssertEqual(merged[0].names.count, 5)
    }

    func testGeneSymbolsAndRelationCues() {
        let text = "Variants of BRCA1, IL-6 and CYP2D6 but not COVID-19, T2DM, CO2, H2O2, CD68 or DNA were studied (HR:1.69; 95%CI1.07-2.68)."
        XCTAssertEqual(CorpusTaskMiner.geneSymbols(in: text).map { String(text[$0]) }, ["BRCA1", "IL-6", "CYP2D6", "CD68"])
        XCTAssertEqual(CorpusTaskMiner.relationLabel("The G allele was associated with an increased risk of asthma."), "yes")
        XCTAssertEqual(CorpusTaskMiner.relationLabel("No association was found between the variant and asthma."), "no")
        XCTAssertEqual(CorpusTaskMiner.relationLabel("The variant was not associated with asthma."), "no")
        XCTAssertEqual(CorpusTaskMiner.relationLabel("None of the SNPs were associated with the intensity of pain."), "no")
        XCTAssertNil(CorpusTaskMiner.relationLabel("Samples were genotyped by PCR."))
    }

    func testMinedEntityTasksAreGroundedAndInTheEvaluationsShape() throws {
        let lexicons = EntityLexicon.merging(try ["BC5CDR-chem", "BC5CDR-disease"].flatMap {
            try EntityLexicon.load(nerFile: RepositoryFiles.eval("ner/\($0)/train.tsv"))
        })
        XCTAssertEqual(lexicons.map(\.type), ["Chemical", "Disease"])
        XCTAssertGreaterThan(lexicons[0].names.count, 500)
        var docs: [Document] = []
        for name in ["medline16n0902.xml.gz", "qi29_main_finding_pubmed_result.xml", "xizhou_pubMR_pubmed_result.xml"] {
            try PubMedReader().read(file: RepositoryFiles.pubmedSample(name)) { if case .document(let d) = $0 { docs.append(d) } }
        }
        let miner = CorpusTaskMiner(kinds: [.entities, .relation, .cloze], lexicons: lexicons)
        var counts: [CorpusTaskMiner.Kind: Int] = [:], outputs: [String: Int] = [:]
        for doc in docs {
            for t in miner.tasks(in: doc) {
                counts[t.kind, default: 0] += 1
                XCTAssertTrue(t.input.hasPrefix(t.kind == .cloze ? "Question: " : "Sentence: "), t.input)
                switch t.kind {
                case .entities:
                    let sentence = String(t.input.dropFirst("Sentence: ".count))
                    XCTAssertTrue(doc.text.contains(sentence), "\(doc.key): the sentence is the document's own")
                    XCTAssertTrue(t.instruction == PromptBuilder.nerInstruction(type: "Chemical")
                                  || t.instruction == PromptBuilder.nerInstruction(type: "Disease"))
                    if t.output == "none" { outputs["none", default: 0] += 1; continue }
                    for name in t.output.components(separatedBy: "\n") { XCTAssertTrue(sentence.contains(name), "\(name) in \(sentence)") }
                case .relation:
                    XCTAssertEqual(t.instruction, PromptBuilder.instruction(for: .gad))
                    XCTAssertEqual(t.input.components(separatedBy: "@GENE$").count, 2, t.input)
                    XCTAssertEqual(t.input.components(separatedBy: "@DISEASE$").count, 2, t.input)
                    XCTAssertTrue(["yes", "no"].contains(t.output))
                    outputs["relation-" + t.output, default: 0] += 1
                case .cloze:
                    XCTAssertEqual(t.instruction, PromptBuilder.instruction(for: .mcq))
                    let lines = t.input.components(separatedBy: "\n")
                    XCTAssertEqual(lines.count, 5, t.input)
                    XCTAssertTrue(lines[0].contains("_____"))
                    XCTAssertEqual(lines.dropFirst().map { String($0.prefix(3)) }, ["A. ", "B. ", "C. ", "D. "])
                    let answer = try XCTUnwrap(lines.first { $0.hasPrefix(t.output + ". ") }).dropFirst(3)
                    XCTAssertTrue(doc.text.contains(lines[0].dropFirst("Question: Which term fills the blank in this sentence? ".count)
                        .replacingOccurrences(of: "_____", with: answer)), "the answer fills the blank back: \(t.input)")
                    outputs["letter-" + t.output, default: 0] += 1
                default:
                    XCTFail("only the asked kinds are mined")
                }
            }
        }
        print("lexicon tasks from \(docs.count) records: \(counts.sorted { $0.key.rawValue < $1.key.rawValue }), outputs \(outputs.sorted { $0.key < $1.key })")
        XCTAssertGreaterThanOrEqual(counts[.entities] ?? 0, 100)
        XCTAssertGreaterThanOrEqual(counts[.cloze] ?? 0, 50)
        XCTAssertGreaterThan(outputs["none"] ?? 0, 0)
        XCTAssertEqual(Set(outputs.keys.filter { $0.hasPrefix("letter-") }), ["letter-A", "letter-B", "letter-C", "letter-D"])
    }
}
