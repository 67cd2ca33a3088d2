import Foundation
import XCTest
@testable import Generator

final class SeedTests: XCTestCase {
    // MARK: Our seed set

    func testBiomedicalSeedsCoverTheTaskFamilies() throws {
        let seeds = try SeedLoader.load(path: Paths.seeds)
        XCTAssertGreaterThanOrEqual(seeds.count, 50)
        let tasks = Set(seeds.map(\.task))
        for family in ["yes_no_maybe", "factoid_qa", "list_qa", "ner_chemical", "ner_disease", "ner_gene", "re_gene_disease",
                       "re_chemical_protein", "re_drug_drug", "topic_classification", "conclusion_summary", "sentence_similarity", "inference"] {
            XCTAssertGreaterThanOrEqual(seeds.filter { $0.task == family }.count, 3, family)
        }
        XCTAssertGreaterThanOrEqual(tasks.count, 13)
        XCTAssertEqual(Set(seeds.map(\.instruction)).count, seeds.count, "duplicate seed instructions")
        // Our seeds pass our own filters against each other (ROUGE-L < 0.7, no banned words).
        var filter = InstructionFilter()
        var rejected: [String] = []
        for s in seeds where filter.check(InstructionCandidate(instruction: s.instruction, input: s.input)).reason != nil { rejected.append(s.instruction) }
        XCTAssertEqual(rejected, [])
    }

    // MARK: Validation errors

    func testSeedFileErrorsNameLineAndField() throws {
        let good = #"{"task":"t","instruction":"Do this thing now","input":"","output":"done"}"#
        func err(_ text: String) -> GeneratorError? {
            do { _ = try SeedLoader.parse(Data(text.utf8), file: "s.jsonl"); return nil } catch { return error as? GeneratorError }
        }
        XCTAssertEqual(err(""), .emptyFile(file: "s.jsonl"))
        XCTAssertEqual(err("\n  \n"), .emptyFile(file: "s.jsonl"))
        XCTAssertEqual(err(good + "\n{oops"), .badJSON(file: "s.jsonl", line: 2, reason: "invalid JSON"))
        XCTAssertEqual(err(good + "\n\n[1,2]"), .badJSON(file: "s.jsonl", line: 3, reason: "expected an object"))
        XCTAssertEqual(err(#"{"task":"t","input":"","output":"x"}"#), .missingField(file: "s.jsonl", line: 1, field: "instruction"))
        XCTAssertEqual(err(#"{"task":"t","instruction":"x","input":5,"output":"x"}"#), .missingField(file: "s.jsonl", line: 1, field: "input"))
        XCTAssertEqual(err(#"{"task":"t","instruction":"x","input":"","output":"  "}"#), .emptyField(file: "s.jsonl", line: 1, field: "output"))
        XCTAssertNil(err(good + "\r\n" + good + "\n"))
        XCTAssertThrowsError(try SeedLoader.load(path: "/nonexistent/seeds.jsonl")) {
            XCTAssertTrue(($0 as? GeneratorError)?.errorDescription?.contains("/nonexistent/seeds.jsonl") == true)
        }
        // Round trip through the writer.
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let out = tempPath("seeds") + ".jsonl"
        try SeedLoader.write(seeds, to: out)
        XCTAssertEqual(try SeedLoader.load(path: out), seeds)
    }

    // MARK: Benchmarks

    func testSamplePubMedQA() throws {
        let all = try BenchmarkSeedSampler.read(path: Paths.data("pubmedqa/pqal_dev.json"), format: .pubmedqa)
        XCTAssertEqual(all.count, 500)
        XCTAssertTrue(all.allSatisfy { ["yes", "no", "maybe"].contains($0.output.split(separator: ".").first.map(String.init) ?? "") })
        let a = try BenchmarkSeedSampler.sample(path: Paths.data("pubmedqa/pqal_dev.json"), format: .pubmedqa, count: 8, seed: 3)
        let b = try BenchmarkSeedSampler.sample(path: Paths.data("pubmedqa/pqal_dev.json"), format: .pubmedqa, count: 8, seed: 3)
        let c = try BenchmarkSeedSampler.sample(path: Paths.data("pubmedqa/pqal_dev.json"), format: .pubmedqa, count: 8, seed: 4)
        XCTAssertEqual(a, b); XCTAssertNotEqual(a, c); XCTAssertEqual(Set(a).count, 8)
        XCTAssertTrue(a[0].input.hasPrefix("Question: "))
    }

    func testSampleNERDirectoryUsesTrainSplit() throws {
        let seeds = try BenchmarkSeedSampler.read(path: Paths.data("ner/BC5CDR-chem"), format: .ner)
        XCTAssertEqual(seeds.first?.input.hasPrefix("Selegiline-induced postural hypotension in Parkinson's disease"), true, seeds.first?.input ?? "")
        XCTAssertEqual(seeds.first?.output, "Selegiline")
        XCTAssertEqual(seeds.first?.task, "ner_chemical")
        let disease = try BenchmarkSeedSampler.read(path: Paths.data("ner/BC5CDR-disease/train.tsv"), format: .ner)
        XCTAssertEqual(disease.first?.output, "postural hypotension, Parkinson's disease")
        XCTAssertTrue(disease.contains { $0.output == "none" })
    }

    func testSampleGADAndMCQ() throws {
        let gad = try BenchmarkSeedSampler.read(path: Paths.data("gad/dev.jsonl"), format: .gad)
        XCTAssertEqual(gad.count, 535)
        XCTAssertEqual(gad[0].output, "positive"); XCTAssertEqual(gad[1].output, "negative")
        let mcq = try BenchmarkSeedSampler.sample(path: Paths.data("medmcqa/medmcqa_dev.json"), format: .mcq, count: 5, seed: 1)
        XCTAssertEqual(mcq.count, 5)
        for s in mcq {
            XCTAssertTrue(s.input.contains("\nA. ") && s.input.contains("\nD. "), s.input)
            XCTAssertTrue(["A", "B", "C", "D"].contains(String(s.output.prefix(1))))
        }
    }

    func testWrongFormatErrorsNameFileAndRecord() throws {
        func message(_ path: String, _ f: BenchmarkFormat) -> String {
            do { _ = try BenchmarkSeedSampler.read(path: path, format: f); return "" } catch { return (error as? LocalizedError)?.errorDescription ?? "\(error)" }
        }
        let gad = Paths.data("gad/dev.jsonl"), pqa = Paths.data("pubmedqa/pqal_dev.json"), ner = Paths.data("ner/NCBI-disease/train.tsv")
        XCTAssertTrue(message(gad, .pubmedqa).contains("not pubmedqa format at top level"), message(gad, .pubmedqa))
        XCTAssertTrue(message(pqa, .gad).contains("\(pqa): not gad (JSONL) format at line 1"), message(pqa, .gad))
        XCTAssertTrue(message(pqa, .ner).contains("line 1"), message(pqa, .ner))
        XCTAssertTrue(message(ner, .mcq).contains("not mcq format"), message(ner, .mcq))
        XCTAssertTrue(message(pqa, .mcq).contains("field \"question\" is missing"), message(pqa, .mcq))
        let badTag = writeTemp("Aspirin\tB-Chemical\nworks\tX-Foo\n", "badtag", ext: "tsv")
        XCTAssertTrue(message(badTag, .ner).contains("line 2: field \"tag\" has label \"X-Foo\""), message(badTag, .ner))
        XCTAssertTrue(message(writeTemp("", "empty"), .gad).contains("no records"))
        XCTAssertTrue(message(Paths.data("gad"), .ner).contains("train.tsv"))
    }
}

// MARK: - Task labels

final class TaskLabelTests: XCTestCase {
    /// Brainstormed instructions take the task family of the seed they are most like (ROUGE-L).
    func testNewInstructionsTakeTheNearestSeedsTask() throws {
        let seeds = try SeedLoader.load(path: Paths.seeds)
        var labeller = TaskLabeller(seeds: seeds)
        let cases: [(String, String?)] = [
            ("Extract all drug names from the sentence as a comma-separated list.", "ner_chemical"),
            ("Extract the disease names mentioned in the text, one per line.", "ner_disease"),
            ("Using only the abstract, answer the question with yes, no or maybe.", "yes_no_maybe"),
            ("Classify the interaction between these two drugs.", "re_drug_drug"),
            ("zzz qqq", nil),
        ]
        for (instruction, expected) in cases {
            let task = labeller.task(of: InstructionCandidate(instruction: instruction, input: ""))
            XCTAssertEqual(task, expected, instruction)
        }
    }

    /// Stats files written before `examplesByTask` existed still load.
    func testOldStatsFilesDecode() throws {
        var stats = DatasetStats()
        stats.examplesByTask = ["ner_gene": 2]
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(stats)) as! [String: Any]
        XCTAssertNotNil(json.removeValue(forKey: "examplesByTask"))
        let old = try JSONDecoder().decode(DatasetStats.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(old.examplesByTask, [:])
        XCTAssertEqual(try JSONDecoder().decode(DatasetStats.self, from: JSONEncoder().encode(stats)), stats)
    }
}
