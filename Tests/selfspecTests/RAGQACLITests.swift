import Foundation
import XCTest
import TestSupport

/// `selfspec eval --rag-qa --build-corpus` and `eval --rag-qa` as a user runs them: the real binary, SmolLM2,
/// a few PubMedQA dev items among a few hundred real PubMed distractors from `corpora/samples`.
final class RAGQACLITests: XCTestCase {
    func runCLI(_ args: [String]) throws -> CLITests.Result { try runToEnd(CLITests.binary, args) }

    /// A PubMedQA file of the first `n` dev items (by PMID).
    func itemsFile(_ n: Int, in dir: URL) throws -> String {
        let dev = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: RepositoryFiles.eval("pubmedqa/pqal_dev.json"))))
        let all = try XCTUnwrap(dev as? [String: Any])
        let some = Dictionary(uniqueKeysWithValues: all.keys.sorted().prefix(n).map { ($0, all[$0]!) })
        let path = dir.appendingPathComponent("items.json").path
        try JSONSerialization.data(withJSONObject: some).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testBuildTheCorpusThenEvaluateSmolLM2OnIt() throws {
        let dir = try makeTemporaryDirectory("ragqa-cli")
        let items = try itemsFile(4, in: dir)
        let db = dir.appendingPathComponent("corpus.sqlite").path
        let model = try RepositoryFiles.model("SmolLM2-135M-Instruct.Q4_1.gguf")

        let build = try runCLI(["eval", "--rag-qa", items, "--db", db, "--build-corpus", "--distractors", CLITests.samples,
                                "--count", "300", "--no-embed", "--json"])
        XCTAssertEqual(build.status, 0, build.stderr)
        let b = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(build.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(b["items"] as? Int, 4)
        XCTAssertEqual(b["distractors"] as? Int, 300)
        XCTAssertEqual(b["documents"] as? Int, 304)
        XCTAssertEqual(b["conclusions"] as? Bool, true)

        let report = dir.appendingPathComponent("report").path
        let r = try runCLI(["eval", "--rag-qa", items, "--db", db, "--model", model, "--max-tokens", "48", "--mode", "bm25",
                            "--resamples", "100", "--report", report, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("\r"), "no progress line in a pipe")
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(o["items"] as? Int, 4)
        XCTAssertEqual(o["mode"] as? String, "bm25")
        XCTAssertEqual(o["missingFromCorpus"] as? [Int], [])
        let row = try XCTUnwrap((o["models"] as? [[String: Any]])?.first)
        XCTAssertEqual(row["name"] as? String, "base")
        let lines = try String(contentsOfFile: report + "/predictions.jsonl", encoding: .utf8).split(separator: "\n")
        let predictions = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        for key in ["recallAtK", "citationPrecision", "citationRecall", "correctness", "unsupportedShare", "loopRate", "rougeL"] {
            let v = try XCTUnwrap(row[key] as? [String: Any], key)
            if key == "citationPrecision", v["value"] as? String == "nan" {
                // Undefined when no answer cites a passage (SmolLM2 rarely does).
                XCTAssertTrue(predictions.allSatisfy { ($0["cited_pmids"] as? [Int])?.isEmpty == true }, "NaN precision with citations")
                continue
            }
            let value = try XCTUnwrap(v["value"] as? Double, key)
            XCTAssertTrue((0...1).contains(value), "\(key) \(value)")
        }
        // BM25 finds each item's own abstract among the 300 distractors.
        XCTAssertGreaterThanOrEqual((row["recallAtK"] as? [String: Any])?["value"] as? Double ?? 0, 0.75)
        XCTAssertGreaterThan(row["tokensPerSecond"] as? Double ?? 0, 0)
        let decisions = try XCTUnwrap(row["decisions"] as? [String: Int])
        XCTAssertEqual(decisions.values.reduce(0, +), 4)
        XCTAssertEqual(lines.count, 4)
        let first = predictions[0]
        XCTAssertEqual(first["model"] as? String, "base")
        XCTAssertNotNil(first["answer"] as? String)
        XCTAssertNotNil(first["cited_pmids"] as? [Int])
        XCTAssertTrue(FileManager.default.fileExists(atPath: report + "/report.md"))
        print(try String(contentsOfFile: report + "/report.md", encoding: .utf8))

        // Clear errors: an empty item file, a missing corpus, --rag-qa without --db.
        let empty = dir.appendingPathComponent("empty.json").path
        try Data("{}".utf8).write(to: URL(fileURLWithPath: empty))
        let e1 = try runCLI(["eval", "--rag-qa", empty, "--db", db, "--model", model])
        XCTAssertNotEqual(e1.status, 0)
        XCTAssertTrue(e1.stderr.contains("no pubmedqa items"), e1.stderr)
        let e2 = try runCLI(["eval", "--rag-qa", items, "--db", dir.appendingPathComponent("none.sqlite").path, "--model", model])
        XCTAssertNotEqual(e2.status, 0)
        XCTAssertTrue(e2.stderr.contains("no corpus at"), e2.stderr)
        let e3 = try runCLI(["eval", "--rag-qa", items])
        XCTAssertNotEqual(e3.status, 0)
        XCTAssertTrue(e3.stderr.contains("--rag-qa needs --db"), e3.stderr)
        let e4 = try runCLI(["eval", "--rag-qa", items, "--db", db, "--build-corpus"])
        XCTAssertNotEqual(e4.status, 0)
        XCTAssertTrue(e4.stderr.contains("--build-corpus needs --distractors"), e4.stderr)

        // --skip 2 takes the items after the first two of the seeded order; --repeat-penalty reaches generation;
        // the model is given by name.
        let skipped = try runCLI(["eval", "--rag-qa", items, "--db", db, "--model", "smollm2", "--max-tokens", "16", "--mode", "bm25",
                                  "--skip", "2", "--limit", "5", "--repeat-penalty", "1.3", "--resamples", "20", "--json"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        let so = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(skipped.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(so["items"] as? Int, 2, "4 items, the first 2 skipped")

        // --instructions replaces the system turn's instructions: a 2-word one makes every prompt shorter by
        // the same number of tokens than ask's default.
        func promptTokens(_ extra: [String], _ name: String) throws -> [Int] {
            let out = dir.appendingPathComponent(name).path
            let r = try runCLI(["eval", "--rag-qa", items, "--db", db, "--model", model, "--max-tokens", "1", "--mode", "bm25",
                                "--limit", "2", "--resamples", "10", "--report", out, "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try String(contentsOfFile: out + "/predictions.jsonl", encoding: .utf8).split(separator: "\n").map {
                try XCTUnwrap((JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["prompt_tokens"] as? Int)
            }
        }
        let standard = try promptTokens([], "default-instructions"), short = try promptTokens(["--instructions", "Answer briefly."], "short-instructions")
        XCTAssertEqual(standard.count, 2)
        XCTAssertEqual(short.count, 2)
        XCTAssertGreaterThan(standard[0] - short[0], 20, "\(standard) vs \(short)")
        XCTAssertEqual(standard[0] - short[0], standard[1] - short[1], "the same instructions in every prompt")
        let e7 = try runCLI(["eval", "--rag-qa", items, "--db", db, "--instructions", " "])
        XCTAssertNotEqual(e7.status, 0)
        XCTAssertTrue(e7.stderr.contains("--instructions is empty"), e7.stderr)
        let e8 = try runCLI(["eval", "--rag-qa", items, "--db", db, "--without-conclusions"])
        XCTAssertNotEqual(e8.status, 0)
        XCTAssertTrue(e8.stderr.contains("--without-conclusions goes with --build-corpus"), e8.stderr)
        let e5 = try runCLI(["eval", "--rag-qa", items, "--db", db, "--skip=-1"])
        XCTAssertNotEqual(e5.status, 0)
        XCTAssertTrue(e5.stderr.contains("invalid skip"), e5.stderr)
        let e6 = try runCLI(["eval", "--pubmedqa", items, "--repeat-penalty", "1.2"])
        XCTAssertNotEqual(e6.status, 0)
        XCTAssertTrue(e6.stderr.contains("--repeat-penalty, --dry-multiplier, --instructions, --context and --verdict are used with --rag-qa only"), e6.stderr)

        // --verdict: every answer starts with Yes, No or Maybe, chosen from the first token's log-probabilities,
        // which each prediction records; the settings line says so.
        let verdictDir = dir.appendingPathComponent("verdict").path
        let v = try runCLI(["eval", "--rag-qa", items, "--db", db, "--model", model, "--max-tokens", "4", "--mode", "bm25",
                            "--limit", "2", "--resamples", "10", "--verdict", "calibrated", "--report", verdictDir])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stderr.contains("content-free probabilities of yes / no / maybe"), v.stderr)
        XCTAssertTrue(try String(contentsOfFile: verdictDir + "/report.md", encoding: .utf8).contains("verdict calibrated"))
        let verdicts = try String(contentsOfFile: verdictDir + "/predictions.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(verdicts.count, 2)
        for p in verdicts {
            let answer = try XCTUnwrap(p["answer"] as? String)
            XCTAssertTrue(["Yes", "No", "Maybe"].contains { answer.hasPrefix($0) }, answer)
            XCTAssertEqual(p["explicit"] as? Bool, true)
            let lp = try XCTUnwrap(p["verdict_logprobs"] as? [Double])
            XCTAssertEqual(lp.count, 3)
            XCTAssertTrue(lp.allSatisfy { $0 < 0 && $0.isFinite }, "\(lp)")
        }
        XCTAssertNil(predictions[0]["verdict_logprobs"], "absent without --verdict")
        let e9 = try runCLI(["eval", "--rag-qa", items, "--db", db, "--verdict", "always"])
        XCTAssertNotEqual(e9.status, 0)
        XCTAssertTrue(e9.stderr.contains("--verdict"), e9.stderr)
    }
}
