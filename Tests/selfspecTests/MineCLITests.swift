import Foundation
import XCTest
import TestSupport

/// `selfspec specialize mine` on a real corpus (the four sample PubMed files, 819 records).
final class MineCLITests: XCTestCase {
    private func run(_ args: [String]) throws -> ProcessOutput { try runToEnd(CLITests.binary, args) }

    func testMineWritesGroundedExamplesAndDropsContaminatedOnes() throws {
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("mine-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
        removeAfterTest(db)  // and every file whose name extends it
        let out = db + ".mined.jsonl", evalFile = db + ".eval.json"
        let ingest = try run(["ingest", CLITests.samples, "--db", db, "--json"])
        XCTAssertEqual(ingest.status, 0, ingest.stderr)

        let r = try run(["specialize", "mine", "--db", db, "--out", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(summary["documents"] as? Int, 819)
        let counts = try XCTUnwrap(summary["examples"] as? [String: Int])
        print("mined: \(counts)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, counts.values.reduce(0, +))
        XCTAssertGreaterThan(counts["conclusion"] ?? 0, 100)
        XCTAssertGreaterThan(counts["inference"] ?? 0, 50)
        let rows = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let conclusion = try XCTUnwrap(rows.first { $0["pmid"] as? Int == 29768149 && $0["task"] as? String == "mined-conclusion" })
        let answer = try XCTUnwrap(conclusion["output"] as? String)
        XCTAssertTrue(answer.hasPrefix("In patients with mild asthma, as-needed budesonide-formoterol"), answer)
        for row in rows { for key in ["instruction", "input", "output"] { XCTAssertFalse((row[key] as? String ?? "").isEmpty, key) } }

        // The same conclusion in an evaluation file: its examples are dropped and counted.
        try JSONSerialization.data(withJSONObject: ["1": ["LONG_ANSWER": answer]]).write(to: URL(fileURLWithPath: evalFile))
        let clean = try run(["specialize", "mine", "--db", db, "--out", out, "--kinds", "conclusion,title", "--eval", evalFile, "--json"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        let s2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThanOrEqual(s2["contaminated"] as? Int ?? 0, 2, "the conclusion and the title example quote it")
        let after = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertFalse(after.contains("\"pmid\":29768149"), "no example of the contaminated record is left")
        XCTAssertFalse(after.contains("mined-inference"))

        let bad = try run(["specialize", "mine", "--db", db, "--out", out, "--kinds", "summary"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown kind 'summary'"), bad.stderr)
    }
}

/// `selfspec specialize backtranslate` with SmolLM2 on the sample corpus: every question asked is
/// saved (kept or dropped, with its reason), a rerun continues instead of asking again, and a model
/// that writes no usable question stops with the counts.
final class BacktranslateCLITests: XCTestCase {
    private func run(_ args: [String]) throws -> ProcessOutput { try runToEnd(CLITests.binary, args) }

    func testBacktranslateSavesEveryOutcomeAndContinues() throws {
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("bt-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
        removeAfterTest(db)
        XCTAssertEqual(try run(["ingest", CLITests.samples, "--db", db, "--json"]).status, 0)
        let out = db + ".bt.jsonl", dropped = db + ".bt.dropped.jsonl", stats = db + ".bt.stats.json"
        let args = ["specialize", "backtranslate", "--db", db, "--out", out, "--model", "smollm2", "--count", "1", "--documents", "60", "--batch", "8"]
        let first = try run(args + ["--json"])
        XCTAssertTrue([0, 1].contains(first.status), first.stderr)
        let s = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stats))) as? [String: Any])
        let asked = try XCTUnwrap(s["asked"] as? Int), candidates = try XCTUnwrap(s["candidates"] as? Int)
        XCTAssertGreaterThan(candidates, 0)
        let lines = { (p: String) in (try? String(contentsOfFile: p, encoding: .utf8))?.split(separator: "\n").count ?? 0 }
        XCTAssertEqual(lines(out) + lines(dropped), asked, "every question asked is saved")
        if first.status == 1 { XCTAssertTrue(first.stderr.contains("writes few usable questions"), first.stderr) }
        let again = try run(args)
        XCTAssertTrue([0, 1].contains(again.status), again.stderr)
        XCTAssertTrue(again.stderr.contains("continuing after \(asked) candidates"), again.stderr)
        XCTAssertGreaterThanOrEqual(lines(out) + lines(dropped), asked)
        let bad = try run(["specialize", "backtranslate", "--db", db, "--out", out, "--count", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--count must be positive"), bad.stderr)
    }
}
