import Foundation
import XCTest
import TestSupport

/// `selfspec eval` end to end: the real SmolLM2 on 20 real PubMedQA items, and its input errors.
final class EvalCLITests: XCTestCase {
    static let model = CLITests.repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let data = RepositoryFiles.eval.path

    func run(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testPubMedQAReport() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eval-\(getpid())-\(UUID().uuidString.prefix(8))")
        removeAfterTest(dir.path)
        let r = try run(["eval", "--model", Self.model, "--pubmedqa", Self.data + "/pubmedqa/pqal_dev.json", "--limit", "20",
                         "--report", dir.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("\r"), "no progress line in a pipe")
        let printed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json"))) as? [String: Any])
        XCTAssertEqual(printed as NSDictionary, written as NSDictionary)
        XCTAssertEqual(written["schema"] as? String, "selfspec-eval/2")
        let task = try XCTUnwrap((written["tasks"] as? [[String: Any]])?.first)
        XCTAssertEqual(task["task"] as? String, "pubmedqa")
        XCTAssertEqual(task["n"] as? Int, 20)
        let results = try XCTUnwrap(task["results"] as? [[String: Any]])
        XCTAssertEqual(results.compactMap { $0["scoring"] as? String }, ["labels", "surface", "calibrated", "generate"])
        for r in results {
            let counts = try XCTUnwrap(r["label_counts"] as? [String: Int])
            XCTAssertEqual(counts.values.reduce(0, +), 20, "\(r)")
        }
        XCTAssertNotNil(results[3]["parse_failures"] as? Int)
        let baselines = try XCTUnwrap(task["baselines"] as? [[String: Any]])
        XCTAssertEqual(baselines.count, 3)
        XCTAssertEqual(baselines[0]["majority"] as? Bool, true)
        let result = results[0]
        XCTAssertEqual(result["model"] as? String, "base")
        let metrics = try XCTUnwrap(result["metrics"] as? [[String: Any]])
        XCTAssertEqual(metrics.compactMap { $0["name"] as? String }, ["accuracy", "macro_f1"])
        for m in metrics {
            let value = try XCTUnwrap(m["value"] as? Double), low = try XCTUnwrap(m["ci_low"] as? Double)
            let high = try XCTUnwrap(m["ci_high"] as? Double)
            XCTAssertTrue(low <= value && value <= high, "\(m)")
        }
        let predictions = try String(contentsOf: dir.appendingPathComponent("predictions.jsonl"), encoding: .utf8)
        XCTAssertEqual(predictions.split(separator: "\n").count, 20)
        let line = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(predictions.split(separator: "\n")[0].utf8)) as? [String: Any])
        XCTAssertEqual((line["by_scoring"] as? [String: String])?.keys.sorted(), ["calibrated", "generate", "labels", "surface"])
        XCTAssertNotNil(line["answer"] as? String)
        let markdown = try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| pubmedqa | labels | accuracy | 20 |") || markdown.contains("| pubmedqa | labels (primary) | accuracy | 20 |"),
                      markdown)
        XCTAssertTrue(markdown.contains("baselines: majority ("), markdown)
    }

    func testInputErrors() throws {
        var r = try run(["eval", "--model", Self.model, "--tasks", "pubmedqa,foo", "--pubmedqa", Self.data + "/pubmedqa/pqal_dev.json"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("unknown task 'foo' (known: pubmedqa, mcq, ner, gad)"), r.stderr)

        r = try run(["eval", "--model", Self.model, "--tasks", "ner"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("task ner needs --ner FILE"), r.stderr)

        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("eval-bad-\(getpid()).jsonl")
        removeAfterTest(bad.path)
        try Data("{\"text\": \"@GENE$ causes @DISEASE$.\", \"relation_type\": \"positive\"}\n{\"text\": \"x\"}\n".utf8).write(to: bad)
        r = try run(["eval", "--model", Self.model, "--gad", bad.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("\(bad.path): line 2: field \"relation_type\" is missing"), r.stderr)

        r = try run(["eval", "--model", Self.model, "--gad", Self.data + "/gad/dev.jsonl", "--shots", "2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--shots 2 needs demonstrations from a separate file"), r.stderr)
    }
}
