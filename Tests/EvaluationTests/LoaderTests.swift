import Foundation
import XCTest
import TestSupport
@testable import Evaluation

/// Paths of the evaluation tests: the labelled sets in `corpora/eval`, the model in `models/`.
enum Paths {
    static let repo = RepositoryFiles.root
    static func eval(_ path: String) -> String { RepositoryFiles.eval(path) }
    static let smolLM2 = repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
}

extension XCTestCase {
    /// A fresh temporary directory, removed after the test.
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("evaltests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        removeAfterTest(dir.path)
        return dir
    }
}

/// Loaders on the real development files and on broken copies of them.
final class LoaderTests: XCTestCase {
    // MARK: Real files

    func testPubMedQADevFile() throws {
        let d = try EvalDataLoader.load(task: .pubmedqa, path: Paths.eval("pubmedqa/pqal_dev.json"))
        guard case let .labels(items) = d.items else { return XCTFail("labels expected") }
        XCTAssertEqual(items.count, 500)
        // Label counts as Python's collections.Counter gives them: yes 276, no 169, maybe 55.
        XCTAssertEqual(items.filter { $0.gold == 0 }.count, 276)
        XCTAssertEqual(items.filter { $0.gold == 1 }.count, 169)
        XCTAssertEqual(items.filter { $0.gold == 2 }.count, 55)
        let first = try XCTUnwrap(items.first { $0.id == "10808977" })
        XCTAssertTrue(first.input.hasSuffix("Question: Can tailored interventions increase mammography use among HMO women?"))
        XCTAssertTrue(first.input.hasPrefix("Context: Telephone counseling and tailored print communications"))
        XCTAssertEqual(first.labels[first.gold], "yes")
    }

    func testMedMCQADevFile() throws {
        let d = try EvalDataLoader.load(task: .mcq, path: Paths.eval("medmcqa/medmcqa_dev.json"))
        guard case let .labels(items) = d.items else { return XCTFail("labels expected") }
        XCTAssertEqual(items.count, 4183)
        let item = try XCTUnwrap(items.first { $0.id == "45258d3d-b974-44dd-a161-c3fccbdadd88" })
        XCTAssertEqual(item.labels, ["A", "B", "C", "D"])
        XCTAssertEqual(item.gold, 0)
        XCTAssertTrue(item.input.contains("\nA. Impulse through myelinated fibers is slower than non-myelinated fibers\nB. "))
    }

    func testGADDevFile() throws {
        let d = try EvalDataLoader.load(task: .gad, path: Paths.eval("gad/dev.jsonl"))
        guard case let .labels(items) = d.items else { return XCTFail("labels expected") }
        XCTAssertEqual(items.count, 535)
        XCTAssertEqual(items.filter { $0.gold == 0 }.count, 293)  // positive, counted with Python
        XCTAssertEqual(items[0].id, "dev_0")
        XCTAssertEqual(items[0].labels[items[0].gold], "yes")
    }

    func testNERDevFiles() throws {
        // Sentences and entities counted with Python (an I- tag not continuing its type opens an entity).
        for (path, sentences, entities) in [("ner/BC5CDR-chem/devel.tsv", 4581, 5347), ("ner/NCBI-disease/devel.tsv", 923, 787)] {
            let d = try EvalDataLoader.load(task: .ner, path: Paths.eval(path))
            guard case let .sentences(s) = d.items else { return XCTFail("sentences expected") }
            XCTAssertEqual(s.count, sentences, path)
            XCTAssertEqual(s.map(\.entities.count).reduce(0, +), entities, path)
        }
        let d = try EvalDataLoader.load(task: .ner, path: Paths.eval("ner/BC5CDR-chem/devel.tsv"))
        guard case let .sentences(s) = d.items else { return XCTFail("sentences expected") }
        XCTAssertEqual(s[0].id, "line 1")
        XCTAssertEqual(Array(s[0].tokens.prefix(3)), ["22", "-", "oxacalcitriol"])
        XCTAssertEqual(s[0].entities.first, EntitySpan(start: 0, end: 3, type: "Chemical"))
    }

    func testMultipleChoiceLayoutsAgree() throws {
        let dir = try tempDir()
        let records: [[String: Any]] = [
            ["question": "Which vitamin deficiency causes scurvy?", "options": ["A": "Vitamin A", "B": "Vitamin C", "C": "Vitamin D"], "answer": "B"],
            ["question": "Which organ makes insulin?", "options": ["Liver", "Pancreas"], "answer": "B"],
        ]
        let list = dir.appendingPathComponent("list.json"), jsonl = dir.appendingPathComponent("q.jsonl")
        let wrapped = dir.appendingPathComponent("wrapped.json")
        try JSONSerialization.data(withJSONObject: records).write(to: list)
        try Data(records.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
            .joined(separator: "\n").utf8).write(to: jsonl)
        try JSONSerialization.data(withJSONObject: ["medmcqa": ["1": records[0], "2": records[1]]]).write(to: wrapped)
        var inputs: [[String]] = []
        for url in [list, jsonl, wrapped] {
            let d = try EvalDataLoader.load(task: .mcq, path: url.path)
            guard case let .labels(items) = d.items else { return XCTFail("labels expected") }
            XCTAssertEqual(items.map(\.gold), [1, 1], url.lastPathComponent)
            XCTAssertEqual(items[1].labels, ["A", "B"])
            inputs.append(items.map(\.input))
        }
        XCTAssertEqual(inputs[0], inputs[1])
        XCTAssertEqual(inputs[0], inputs[2])
        XCTAssertEqual(inputs[0][1], "Question: Which organ makes insulin?\nA. Liver\nB. Pancreas")
    }

    // MARK: Broken copies

    /// The error `load` throws for `text` written to a temporary file, and that file's path.
    func loadError(_ task: EvalTask, _ text: String, name: String) throws -> (EvaluationError, String) {
        let file = try tempDir().appendingPathComponent(name)
        try Data(text.utf8).write(to: file)
        do {
            _ = try EvalDataLoader.load(task: task, path: file.path)
        } catch let error as EvaluationError {
            return (error, file.path)
        }
        XCTFail("\(name) loaded without an error")
        return (.emptyFile(file: "", task: ""), file.path)
    }

    func testBrokenPubMedQA() throws {
        var root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Paths.eval("pubmedqa/pqal_dev.json")))) as? [String: Any])
        var record = try XCTUnwrap(root["10808977"] as? [String: Any])
        record["final_decision"] = "perhaps"
        root["10808977"] = record
        var (error, path) = try loadError(.pubmedqa, String(decoding: try JSONSerialization.data(withJSONObject: root), as: UTF8.self), name: "pq.json")
        XCTAssertEqual(error, .unknownLabel(file: path, location: "record 10808977", field: "final_decision", label: "perhaps",
                                            allowed: ["yes", "no", "maybe"]))
        XCTAssertEqual(error.localizedDescription,
                       "\(path): record 10808977: field \"final_decision\" has label \"perhaps\", expected one of yes, no, maybe")
        record["final_decision"] = "yes"
        record["QUESTION"] = nil
        root["10808977"] = record
        (error, path) = try loadError(.pubmedqa, String(decoding: try JSONSerialization.data(withJSONObject: root), as: UTF8.self), name: "pq.json")
        XCTAssertEqual(error, .missingField(file: path, location: "record 10808977", field: "QUESTION", expected: "a non-empty string"))
        (error, path) = try loadError(.pubmedqa, "[1, 2]", name: "list.json")
        XCTAssertEqual(error, .wrongFormat(file: path, task: "pubmedqa", location: "top level", reason: "expected one JSON object keyed by PMID"))
    }

    func testBrokenGAD() throws {
        let real = try String(contentsOfFile: Paths.eval("gad/dev.jsonl"), encoding: .utf8).split(separator: "\n").prefix(3).map(String.init)
        var (error, path) = try loadError(.gad, [real[0], "{not json", real[2]].joined(separator: "\n"), name: "gad.jsonl")
        XCTAssertEqual(error, .wrongFormat(file: path, task: "gad (JSONL)", location: "line 2", reason: "not a JSON object"))
        XCTAssertEqual(error.localizedDescription, "\(path): not gad (JSONL) format at line 2: not a JSON object")
        let relabelled = real[2].replacingOccurrences(of: "\"relation_type\": \"positive\"", with: "\"relation_type\": \"related\"")
            .replacingOccurrences(of: "\"relation_type\": \"negative\"", with: "\"relation_type\": \"related\"")
        (error, path) = try loadError(.gad, [real[0], real[1], relabelled].joined(separator: "\n"), name: "gad.jsonl")
        XCTAssertEqual(error, .unknownLabel(file: path, location: "line 3", field: "relation[0].relation_type", label: "related",
                                            allowed: ["positive", "negative"]))
        (error, path) = try loadError(.gad, "{\"relation_type\": \"positive\"}\n", name: "gad.jsonl")
        XCTAssertEqual(error, .missingField(file: path, location: "line 1", field: "text", expected: "a non-empty string"))
    }

    func testBrokenNER() throws {
        var lines = try String(contentsOfFile: Paths.eval("ner/BC5CDR-chem/devel.tsv"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).prefix(30).map(String.init)
        lines[4] = "turnover O"  // a space instead of the tab
        var (error, path) = try loadError(.ner, lines.joined(separator: "\n"), name: "ner.tsv")
        XCTAssertEqual(error, .wrongFormat(file: path, task: "ner (IOB token<TAB>tag)", location: "line 5", reason: "expected token<TAB>tag"))
        lines[4] = "turnover\tX-Chemical"
        (error, path) = try loadError(.ner, lines.joined(separator: "\n"), name: "ner.tsv")
        XCTAssertEqual(error, .unknownLabel(file: path, location: "line 5", field: "tag", label: "X-Chemical", allowed: ["O", "B-<type>", "I-<type>"]))
        (error, path) = try loadError(.ner, "\n\n", name: "empty.tsv")
        XCTAssertEqual(error, .emptyFile(file: path, task: "ner"))
    }

    func testBrokenMultipleChoice() throws {
        var (error, path) = try loadError(.mcq, """
            {"question": "Q1?", "options": {"A": "x", "B": "y"}, "answer": "A"}
            {"question": "Q2?", "options": {"A": "x", "B": "y"}}
            """, name: "mcq.jsonl")
        XCTAssertEqual(error, .missingField(file: path, location: "line 2", field: "answer", expected: "a string (an option letter)"))
        (error, path) = try loadError(.mcq, #"[{"question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "E"}]"#, name: "mcq.json")
        XCTAssertEqual(error, .unknownLabel(file: path, location: "record 1", field: "answer", label: "E", allowed: ["A", "B"]))
        (error, path) = try loadError(.mcq, #"{"q1": {"question": "Q?", "options": {"A": "x"}, "answer": "A"}}"#, name: "mcq.json")
        XCTAssertEqual(error, .missingField(file: path, location: "record q1", field: "options",
                                            expected: "an object or list of at least 2 options"))
        (error, path) = try loadError(.mcq, "not json at all\n", name: "mcq.txt")
        XCTAssertEqual(error.localizedDescription,
                       "\(path): not mcq format at line 1: not JSON (expected a JSON object, list, or one object per line)")
    }

    func testUnknownTaskAndMissingFile() {
        XCTAssertThrowsError(try EvalTask(name: "pubmed")) { error in
            XCTAssertEqual(error.localizedDescription, "unknown task 'pubmed' (known: pubmedqa, mcq, ner, gad)")
        }
        XCTAssertEqual(try EvalTask(name: " GAD "), .gad)
        XCTAssertThrowsError(try EvalDataLoader.load(task: .gad, path: "/nonexistent/gad.jsonl")) { error in
            XCTAssertTrue(error.localizedDescription.hasPrefix("/nonexistent/gad.jsonl: cannot read"), error.localizedDescription)
        }
    }

    // MARK: Sampling and demonstrations

    func testSeededSampleAndDemonstrationPool() throws {
        let d = try EvalDataLoader.load(task: .pubmedqa, path: Paths.eval("pubmedqa/pqal_dev.json"))
        let a = d.sample(limit: 20, seed: 7), b = d.sample(limit: 20, seed: 7), c = d.sample(limit: 20, seed: 8)
        XCTAssertEqual(a.contentKeys, b.contentKeys)
        XCTAssertNotEqual(a.contentKeys, c.contentKeys)
        XCTAssertEqual(Set(a.contentKeys).count, 20)
        // --skip: the items after the first N of the same order, disjoint from --limit N's.
        let rest = d.sample(limit: nil, seed: 7, skip: 20), next = d.sample(limit: 5, seed: 7, skip: 20)
        XCTAssertEqual(rest.count, d.count - 20)
        XCTAssertTrue(Set(rest.contentKeys).isDisjoint(with: a.contentKeys))
        XCTAssertEqual(next.contentKeys, Array(d.sample(limit: 25, seed: 7).contentKeys.suffix(5)))
        XCTAssertEqual(d.sample(limit: 5, seed: 7, skip: d.count).count, 0)
        XCTAssertThrowsError(try DemonstrationPool.candidates(d, excluding: d)) { error in
            XCTAssertEqual(error as? EvaluationError, .demonstrationsAreEvaluated(file: d.file, task: "pubmedqa"))
        }
        // A demonstrations file holding two evaluated records and one other: only the other is kept.
        var root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d.file))) as? [String: Any])
        let keys = Array(root.keys.sorted().prefix(3))
        root = Dictionary(uniqueKeysWithValues: keys.map { ($0, root[$0]!) })
        var changed = try XCTUnwrap(root[keys[2]] as? [String: Any])
        changed["QUESTION"] = "A question that is not in the evaluated file?"
        root[keys[2]] = changed
        let file = try tempDir().appendingPathComponent("demos.json")
        try JSONSerialization.data(withJSONObject: root).write(to: file)
        let pool = try DemonstrationPool.candidates(try EvalDataLoader.load(task: .pubmedqa, path: file.path), excluding: d)
        XCTAssertEqual(pool.count, 1)
        XCTAssertTrue(pool.contentKeys[0].hasSuffix("A question that is not in the evaluated file?"))
        XCTAssertEqual(DemonstrationPool.draw(shots: 3, from: 10, seed: 1, item: 4), DemonstrationPool.draw(shots: 3, from: 10, seed: 1, item: 4))
        XCTAssertEqual(Set(DemonstrationPool.draw(shots: 3, from: 10, seed: 1, item: 4)).count, 3)
    }
}
