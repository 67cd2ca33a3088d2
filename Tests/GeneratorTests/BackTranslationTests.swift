import Foundation
import Ingest
import LLM
import TestSupport
import XCTest
@testable import Generator

/// `YesNoBackTranslator` (`specialize backtranslate`): candidates from real structured abstracts,
/// the question filters, PubMedQA-shaped examples, balanced labels, saving and resuming, with the
/// real SmolLM2 as the writer.
final class BackTranslationTests: XCTestCase {
    func testCandidateIsTheAbstractWithoutItsConclusion() throws {
        let doc = try XCTUnwrap(try samplePubMed("pubmed-29768149.xml").first { $0.pmid == 29768149 })
        let c = try XCTUnwrap(YesNoBackTranslator.candidate(doc))
        XCTAssertEqual(c.context.map(\.name), ["BACKGROUND", "METHODS", "RESULTS"])
        XCTAssertEqual(c.conclusionName, "CONCLUSIONS")
        XCTAssertTrue(c.conclusion.hasPrefix("In patients with mild asthma, as-needed budesonide-formoterol provided superior"), c.conclusion)
        let e = YesNoBackTranslator.example(c, label: "no", question: "Does budesonide-formoterol worsen asthma control?", verifiedAs: "no")
        XCTAssertEqual(e.instruction, BenchmarkSeedSampler.pubmedQAInstruction)
        XCTAssertTrue(e.input.hasPrefix("Question: Does budesonide-formoterol worsen asthma control?\nAbstract: "), e.input)
        XCTAssertFalse(e.input.contains(c.conclusion), "the abstract shown stops before the conclusion")
        XCTAssertTrue(e.input.contains("A total of 3849 patients"))
        XCTAssertEqual(e.output, "no. " + c.conclusion)
        XCTAssertEqual(e.sections, ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"])
        XCTAssertEqual(e.pmid, 29768149)
        XCTAssertTrue(YesNoBackTranslator.questionPrompt(c, label: "no").contains("opposite of the main finding"))
        XCTAssertTrue(YesNoBackTranslator.questionPrompt(c, label: "yes").contains("whether the main finding holds"))
        // An unstructured abstract has no candidate.
        let plain = Document(key: "x", source: .text, title: "T", text: "Only text.", sections: [.init(name: "", start: 0, end: 10)])
        XCTAssertNil(YesNoBackTranslator.candidate(plain))
    }

    func testQuestionCleaningAndFilters() {
        XCTAssertEqual(YesNoBackTranslator.question(from: "**Question:** Does aspirin reduce stroke risk?\n\nAnswer: yes"),
                       "Does aspirin reduce stroke risk?")
        XCTAssertEqual(YesNoBackTranslator.question(from: "Sure! Here it is:\n\"Is metformin safe in pregnancy?\""), "Is metformin safe in pregnancy?")
        let title = "Aspirin and stroke."
        XCTAssertNil(YesNoBackTranslator.problem(question: "Does aspirin reduce the risk of stroke in older adults?", title: title))
        XCTAssertEqual(YesNoBackTranslator.problem(question: "What is the risk of stroke with aspirin?", title: title), "not_yes_no")
        XCTAssertEqual(YesNoBackTranslator.problem(question: "Does aspirin work?", title: title), "length")
        XCTAssertEqual(YesNoBackTranslator.problem(question: "Does aspirin reduce stroke risk, yes or no?", title: title), "names_answer")
        XCTAssertEqual(YesNoBackTranslator.problem(question: "Does aspirin not reduce the risk of stroke in adults?", title: title), "negated")
        XCTAssertEqual(YesNoBackTranslator.problem(question: "Doesn't aspirin lower the risk of stroke in adults?", title: title), "negated")
        XCTAssertEqual(YesNoBackTranslator.problem(question: "Is stroke risk unchanged without aspirin in older adults?", title: title), "negated")
        XCTAssertEqual(YesNoBackTranslator.problem(question: "Is aspirin associated with stroke in adults?", title: "Is aspirin associated with stroke in adults"), "copies_title")
        XCTAssertNil(YesNoBackTranslator.problem(question: "Is aspirin associated with stroke in adults?", title: "Is aspirin associated with stroke in adults?"),
                     "a question title is PubMedQA's own question")
    }

    /// SmolLM2 as the writer: every candidate asked gets an outcome (kept, or dropped with a
    /// reason), labels alternate while nothing is kept, every outcome is saved as its batch ends,
    /// and a rerun with the saved outcomes asks only new candidates.
    func testRunSavesEveryOutcomeAndResumes() throws {
        let docs = try samplePubMed("qi29_main_finding_pubmed_result.xml") + samplePubMed("xizhou_pubMR_pubmed_result.xml")
        let candidates = docs.compactMap(YesNoBackTranslator.candidate)
        XCTAssertGreaterThanOrEqual(candidates.count, 8)
        let file = try GGUFFile(path: try RepositoryFiles.model("SmolLM2-135M-Instruct.Q4_1.gguf"))
        let generator = TextGenerator(model: try loadLanguageModel(file: file), tokenizer: try TokenizerFactory.make(metadata: file.metadata))
        let translator = YesNoBackTranslator(generator: generator, template: try ChatTemplate(metadata: file.metadata), verify: true, maxBatch: 4)
        let path = tempPath("bt") + ".jsonl"
        var batches = 0
        let first = try translator.run(candidates, count: 2, maxAsked: 4, write: { outcomes in
            batches += 1
            try YesNoBackTranslator.append(outcomes, to: path)
        })
        XCTAssertEqual(first.count, 4, "stops at maxAsked")
        XCTAssertGreaterThanOrEqual(batches, 1)
        XCTAssertEqual(try YesNoBackTranslator.read(path), first, "every outcome saved")
        XCTAssertEqual(first.map(\.documentKey), candidates.prefix(4).map(\.documentKey), "in order")
        for o in first {
            XCTAssertTrue(YesNoBackTranslator.labels.contains(o.label))
            if let d = o.dropped {
                XCTAssertTrue(["not_yes_no", "length", "names_answer", "copies_title", "duplicate", "disagrees", "failed"].contains(d), d)
            } else {
                XCTAssertNil(YesNoBackTranslator.problem(question: o.question, title: ""))
                XCTAssertEqual(o.verifiedAs, o.label)
            }
        }
        print("SmolLM2 back-translation: " + first.map { "\($0.label) \($0.dropped ?? "kept"): \($0.question.prefix(80))" }.joined(separator: " | "))
        if first.allSatisfy({ $0.dropped != nil }) {
            XCTAssertEqual(first.prefix(2).map(\.label).sorted(), ["no", "yes"], "balanced while nothing is kept")
        }
        let resumed = try translator.run(candidates, count: 2, done: first, maxAsked: 6, write: { try YesNoBackTranslator.append($0, to: path) })
        XCTAssertEqual(Array(resumed.prefix(4)), first)
        XCTAssertEqual(Set(resumed.map(\.documentKey)).count, resumed.count, "no candidate asked twice")
        XCTAssertLessThanOrEqual(resumed.count, 6)

        // A torn last line (a kill mid-write) is left out; any other bad line is an error naming the file and line.
        let torn = tempPath("torn") + ".jsonl"
        try (String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self) + "{\"instruction\": \"cut").write(toFile: torn, atomically: true, encoding: .utf8)
        XCTAssertEqual(try YesNoBackTranslator.read(torn).count, resumed.count)
        let bad = tempPath("bad") + ".jsonl"
        try "{\"x\": 1}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try YesNoBackTranslator.read(bad)) { XCTAssertTrue("\($0.localizedDescription)".contains("\(bad):1"), "\($0)") }
    }
}
