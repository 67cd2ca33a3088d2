import Foundation
import XCTest
import TestSupport

/// The README's main job (`scripts/demo`), end to end on a small real PubMed file: ingest,
/// stats, embed, search, a grounded dataset from SmolLM2, a LoRA adapter, base vs specialized on
/// the in-repository PubMedQA dev set (the default), an answer with citations, the run report; then a second run that reuses every stage.
final class DemoTests: XCTestCase {
    func runDemo(_ dir: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [CLITests.repo.appendingPathComponent("scripts/demo").path]
        var env = ProcessInfo.processInfo.environment
        env["SELFSPEC_BIN"] = CLITests.binary
        env["SELFSPEC_RUN"] = dir
        env["SELFSPEC_INPUT"] = CLITests.samples + "/qi29_main_finding_pubmed_result.xml"
        env["SELFSPEC_COUNT"] = "2"
        env["SELFSPEC_STEPS"] = "1"
        env["SELFSPEC_EVAL_LIMIT"] = "6"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testMainJobRunsEveryStageAndReusesThem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(getpid())-\(UUID().uuidString.prefix(8))").path
        removeAfterTest(dir)
        let first = try runDemo(dir)
        XCTAssertEqual(first.status, 0, first.out)
        XCTAssertTrue(first.out.contains("documents 121  passages 150"), first.out)
        let examples = try String(contentsOfFile: dir + "/data/examples.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertGreaterThanOrEqual(examples.count, 2)
        for e in examples {
            XCTAssertFalse((e["output"] as? String ?? "").isEmpty)
            XCTAssertFalse((e["passages"] as? [Any] ?? []).isEmpty, "grounded: every example cites passages")
        }
        for f in ["tune/peft/adapter_model.safetensors", "tune/peft/adapter_config.json", "tune/adapter.gguf", "tune/log.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), f)
        }
        XCTAssertTrue(first.out.contains("150 vectors stored"), first.out)
        // Base vs specialized on the same PubMedQA items, with intervals and a paired test.
        let eval = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/eval/report.json"))) as! [String: Any]
        let task = try XCTUnwrap((eval["tasks"] as? [[String: Any]])?.first)
        XCTAssertEqual(task["task"] as? String, "pubmedqa")
        let primary = (task["results"] as? [[String: Any]])?.filter { $0["scoring"] as? String == task["primary_scoring"] as? String }
        XCTAssertEqual(primary?.map { $0["model"] as? String }, ["base", "tune"])
        XCTAssertFalse((task["comparisons"] as? [Any] ?? []).isEmpty)
        // The specialist's answer cites retrieved articles.
        let ask = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ask.json"))) as! [String: Any]
        XCTAssertFalse((ask["answer"] as? String ?? "").isEmpty)
        // The passages shown are numbered; the sources listed are only the cited ones, each one shown.
        let shown = try XCTUnwrap(ask["passages"] as? [[String: Any]], "a RAG answer lists the passages it was shown")
        XCTAssertFalse(shown.isEmpty)
        let shownPMIDs = Set(shown.compactMap { $0["pmid"] as? Int })
        for source in ask["sources"] as? [[String: Any]] ?? [] {
            XCTAssertTrue(shownPMIDs.contains(source["pmid"] as? Int ?? -1), "a cited source was shown: \(source)")
        }
        XCTAssertNotNil(ask["invalid_citations"] as? Int)
        // The demo ends with the same question to the base model, the specialist and (when set up) Qwen2.5,
        // each answer followed by its checked sources, and none of them looping.
        var answerers = ["--- base (SmolLM2-135M) ---", "--- specialist (SmolLM2-135M + the LoRA of step 4) ---"]
        if FileManager.default.fileExists(atPath: CLITests.repo.appendingPathComponent("models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").path) {
            answerers.append("--- Qwen2.5-Coder-1.5B ---")
        }
        for (i, header) in answerers.enumerated() {
            let part = try XCTUnwrap(first.out.components(separatedBy: header).dropFirst().first, "\(header) in \(first.out)")
            let answer = i + 1 < answerers.count ? part.components(separatedBy: answerers[i + 1])[0] : part
            XCTAssertTrue(answer.contains("\nSources:"), "\(header): \(answer)")
            XCTAssertFalse(answer.contains("started repeating itself"), "\(header) looped: \(answer)")
        }
        // The run report covers every stage.
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        for part in ["1. Corpus", "Examples by task family", "3. LoRA training", "<polyline", "pubmedqa (6 items", "5. The specialist answers", "PMID"] {
            XCTAssertTrue(html.contains(part), part)
        }
        XCTAssertFalse(html.contains("Not run."), "every stage ran")
        XCTAssertTrue(first.out.contains("report: \(dir)/report.html"), first.out)
        // Again: every stage is reused (nothing re-ingested, generated or trained).
        let again = try runDemo(dir)
        XCTAssertEqual(again.status, 0, again.out)
        XCTAssertTrue(again.out.contains("1 unchanged file(s) skipped"), again.out)
        XCTAssertTrue(again.out.contains("already trained"), again.out)
        XCTAssertTrue(again.out.contains("already evaluated"), again.out)
        XCTAssertTrue(again.out.contains("0 pending") || again.out.contains("nothing to embed"), again.out)
        let after = try String(contentsOfFile: dir + "/data/examples.jsonl", encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(after, examples.count)
    }
}
