import Foundation
import XCTest

/// The README's main job (`scripts/demo`), end to end on a small real PubMed file: ingest,
/// stats, search, a grounded dataset from SmolLM2, a LoRA adapter; then a second run that reuses
/// every stage.
final class DemoTests: XCTestCase {
    func runDemo(_ dir: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [CLITests.repo.appendingPathComponent("scripts/demo").path]
        var env = ProcessInfo.processInfo.environment
        env["SELFSPEC_BIN"] = CLITests.binary
        env["SELFSPEC_RUN"] = dir
        env["SELFSPEC_INPUT"] = CLITests.shared + "/qi29_main_finding_pubmed_result.xml"
        env["SELFSPEC_COUNT"] = "2"
        env["SELFSPEC_STEPS"] = "1"
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
        // Again: every stage is reused (nothing re-ingested, generated or trained).
        let again = try runDemo(dir)
        XCTAssertEqual(again.status, 0, again.out)
        XCTAssertTrue(again.out.contains("1 unchanged file(s) skipped"), again.out)
        XCTAssertTrue(again.out.contains("already trained"), again.out)
        let after = try String(contentsOfFile: dir + "/data/examples.jsonl", encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(after, examples.count)
    }
}
