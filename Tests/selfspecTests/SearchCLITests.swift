import Foundation
import Ingest
import SQLiteDB
import XCTest
import TestSupport

/// End-to-end tests of `selfspec embed` and `selfspec search` on a real PubMed file (121
/// articles, 150 passages) with the real MiniLM model.
final class SearchCLITests: XCTestCase {
    static let file = CLITests.samples + "/qi29_main_finding_pubmed_result.xml"
    static let model = CLITests.repo.appendingPathComponent("models/all-MiniLM-L6-v2").path

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// Runs the built binary from the repository root (so the default `--embedder` resolves).
    @discardableResult
    func run(_ args: [String]) throws -> Result {
        let p = try start(args)
        let o = (p.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        let e = (p.standardError as! Pipe).fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.currentDirectoryURL = CLITests.repo
        p.arguments = args
        p.standardOutput = Pipe()
        p.standardError = Pipe()
        try p.run()
        return p
    }

    func json<T>(_ r: Result, as: T.Type = [String: Any].self) throws -> T {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? T, r.stdout)
    }

    /// A fresh database path, removed (with its side files) after the test.
    func tempDB() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("search-cli-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
        removeAfterTest(path)
        return path
    }

    func vectorCount(_ db: String) -> Int {
        (try? Database(path: db, readOnly: true).scalarInt("SELECT count(*) FROM vectors")) ?? 0
    }

    // MARK: embed + search

    /// A killed `embed` keeps its committed batches; `--limit` and a plain re-run finish the rest;
    /// then `search --json` finds articles by title in every mode, with filters.
    func testEmbedKillResumeThenSearchEveryMode() throws {
        let db = tempDB()
        let ingest = try json(run(["ingest", Self.file, "--db", db, "--json"]))
        let passages = try XCTUnwrap(ingest["passages"] as? Int)
        XCTAssertEqual(passages, 150)

        // Search before embedding: dense is a clear error, the default falls back to BM25.
        let early = try run(["search", "melatonin", "--db", db, "--mode", "dense"])
        XCTAssertEqual(early.status, 1)
        XCTAssertTrue(early.stderr.contains("no passage of \(db) is embedded yet"), early.stderr)
        XCTAssertEqual(try run(["search", "serine", "--db", db]).status, 0)

        // Kill -9 in the middle of a run.
        let p = try start(["embed", "--db", db, "--batch", "8", "--quiet"])
        let deadline = Date().addingTimeInterval(120)
        while vectorCount(db) < 16, p.isRunning, Date() < deadline { usleep(20_000) }
        XCTAssertTrue(p.isRunning, "the run must still be going when killed")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        let kept = vectorCount(db)
        XCTAssertTrue(kept >= 16 && kept < passages && kept % 8 == 0, "whole batches kept: \(kept)")

        let limited = try json(run(["embed", "--db", db, "--limit", "10", "--json"]))
        XCTAssertEqual(limited["embedded"] as? Int, 10)
        XCTAssertEqual(limited["pending"] as? Int, passages - kept - 10)
        let rest = try json(run(["embed", "--db", db, "--json"]))
        XCTAssertEqual(rest["embedded"] as? Int, passages - kept - 10)
        XCTAssertEqual(rest["vectors"] as? Int, passages)
        XCTAssertEqual(rest["pending"] as? Int, 0)
        let none = try json(run(["embed", "--db", db, "--json"]))
        XCTAssertEqual(none["embedded"] as? Int, 0)
        XCTAssertEqual(none["indexAdded"] as? Int, 0)

        // Title queries: the own PMID in the top 10 always and the top 3 for >= 85% of titles, in every mode.
        let titles = try Database(path: db, readOnly: true).prepare("""
            SELECT pmid, title FROM documents d WHERE id % 8 = 1 AND EXISTS (SELECT 1 FROM passages p WHERE p.doc_id = d.id) ORDER BY id
            """)
        var picked: [(Int, String)] = []
        while try titles.step() { picked.append((titles.int(0), titles.string(1) ?? "")) }
        XCTAssertGreaterThanOrEqual(picked.count, 10)
        for args in [["--mode", "dense"], ["--mode", "dense", "--exact"], ["--mode", "bm25"], ["--mode", "hybrid"], []] {
            var ranks: [Int] = []
            for (pmid, title) in picked {
                let hits = try json(run(["search", title, "--db", db, "--k", "10", "--json"] + args), as: [[String: Any]].self)
                XCTAssertEqual(hits.count, 10)
                let rank = (hits.firstIndex { $0["pmid"] as? Int == pmid } ?? 99) + 1
                XCTAssertLessThanOrEqual(rank, 10, "\(args) PMID \(pmid) for its title")
                ranks.append(rank)
                for key in ["rank", "score", "passageID", "title", "section", "text"] { XCTAssertNotNil(hits[0][key], key) }
            }
            let top3 = Double(ranks.filter { $0 <= 3 }.count) / Double(ranks.count)
            print("search \(args): own PMID ranks \(ranks), top-3 rate \(top3)")
            XCTAssertGreaterThanOrEqual(top3, 0.85, "\(args)")
        }

        // Filters in every mode.
        for mode in ["dense", "bm25", "hybrid"] {
            let hits = try json(run(["search", "serine metabolism in cancer", "--db", db, "--mode", mode, "--years", "2017-2018", "--k", "15", "--json"]),
                                as: [[String: Any]].self)
            XCTAssertFalse(hits.isEmpty, mode)
            for h in hits { XCTAssertTrue((2017...2018).contains(h["year"] as? Int ?? 0), "\(mode): \(h["year"] ?? "-")") }
        }

        // Human-readable output.
        let text = try run(["search", picked[0].1, "--db", db, "--k", "2"])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.hasPrefix("hybrid search: 2 result(s)"), text.stdout)
        XCTAssertTrue(text.stdout.contains("PMID \(picked[0].0)"), text.stdout)

        // Read commands open the corpus read-only: the file's bytes stay as they are.
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        for args in [["search", picked[0].1], ["stats"], ["show", String(picked[0].0)]] {
            XCTAssertEqual(try run(args + ["--db", db]).status, 0, "\(args)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: db)), before, "a read command changed the corpus file")
    }

    // MARK: Bad input

    func testEmbedAndSearchErrorsNameTheirInput() throws {
        let db = tempDB()
        XCTAssertEqual(try run(["ingest", CLITests.samples + "/pubmed-29768149.xml", "--db", db]).status, 0)
        let noModel = try run(["embed", "--db", db, "--embedder", "/nonexistent/minilm"])
        XCTAssertEqual(noModel.status, 1)
        XCTAssertTrue(noModel.stderr.contains("/nonexistent/minilm"), noModel.stderr)

        let missingDB = try run(["search", "x", "--db", "/nonexistent/corpus.sqlite"])
        XCTAssertNotEqual(missingDB.status, 0)
        XCTAssertTrue(missingDB.stderr.contains("/nonexistent/corpus.sqlite"), missingDB.stderr)

        let badMode = try run(["search", "x", "--db", db, "--mode", "fuzzy"])
        XCTAssertEqual(badMode.status, 64)
        XCTAssertTrue(badMode.stderr.contains("--mode must be dense, bm25 or hybrid"), badMode.stderr)
        let badYears = try run(["search", "x", "--db", db, "--years", "2020-2010"])
        XCTAssertEqual(badYears.status, 64)

        // Vectors of another model in the file: both sides named.
        XCTAssertEqual(try run(["embed", "--db", db, "--quiet"]).status, 0)
        let corpus = try Database(path: db)
        try corpus.execute("UPDATE vector_meta SET value = 'some-other-model' WHERE key = 'model'")
        let mismatch = try run(["search", "asthma", "--db", db, "--mode", "dense"])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.stderr.contains("some-other-model (384-d)") && mismatch.stderr.contains("MiniLM"), mismatch.stderr)
        let reEmbed = try run(["embed", "--db", db])
        XCTAssertEqual(reEmbed.status, 1)
        XCTAssertTrue(reEmbed.stderr.contains("some-other-model"), reEmbed.stderr)
        let reset = try json(run(["embed", "--db", db, "--reset", "--json"]))
        XCTAssertEqual(reset["pending"] as? Int, 0)

        // A corrupt vector blob names the passage.
        let victim = try corpus.scalarInt("SELECT min(passage_id) FROM vectors")
        try corpus.execute("UPDATE vectors SET vector = x'0102' WHERE passage_id = \(victim)")
        let corrupt = try run(["search", "asthma", "--db", db, "--mode", "hybrid", "--exact"])
        XCTAssertEqual(corrupt.status, 1)
        XCTAssertTrue(corrupt.stderr.contains("passage \(victim) has 2 bytes, expected 1536"), corrupt.stderr)
    }
}
