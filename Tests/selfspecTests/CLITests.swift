import Foundation
import XCTest
import TestSupport

/// End-to-end tests of the `selfspec` binary: real files, a real SQLite corpus, real exit codes.
final class CLITests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repo.appendingPathComponent("Tests/IngestTests/Fixtures/pubmed").path
    /// Small real PubMed files tracked in the repository.
    static let samples = RepositoryFiles.pubmedSamples.path

    /// The binary built next to this test bundle.
    static let binary: String = {
        let dir = Bundle.main.bundleURL.deletingLastPathComponent()
        for candidate in [Bundle.main.bundleURL.appendingPathComponent("selfspec"), dir.appendingPathComponent("selfspec")] {
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        }
        return repo.appendingPathComponent(".build/release/selfspec").path
    }()

    typealias Result = ProcessOutput

    @discardableResult
    func run(_ args: [String]) throws -> Result {
        try runToEnd(Self.binary, args)
    }

    /// A fresh database path, removed (with its side files) after the test.
    func tempDB() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
        removeAfterTest(path)
        return path
    }

    func testIngestStatsShowSearchRoundTrip() throws {
        let db = tempDB()
        let r = try run(["ingest", Self.samples, "--db", db, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("\r"), "no progress line in a pipe")
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["documentsRead"] as? Int, 819)

        let stats = try run(["stats", "--db", db, "--json"])
        XCTAssertEqual(stats.status, 0, stats.stderr)
        let s = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(s?["documents"] as? Int, 819)
        XCTAssertEqual(s?["files"] as? Int, 4)

        let show = try run(["show", "29768149", "--db", db])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(show.stdout.contains("Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."), show.stdout)
        XCTAssertTrue(show.stdout.contains("* Asthma [D001249] / drug therapy"), show.stdout)

        let search = try run(["search", "budesonide formoterol asthma", "--db", db, "--k", "3", "--json"])
        XCTAssertEqual(search.status, 0, search.stderr)
        let hits = try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [[String: Any]]
        XCTAssertEqual(hits?.count, 3)
        XCTAssertEqual(hits?.first?["pmid"] as? Int, 29768149)

        // Running again skips the unchanged files and leaves the same corpus.
        let again = try run(["ingest", Self.samples, "--db", db])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("4 unchanged file(s) skipped"), again.stdout)
        let stats2 = try run(["stats", "--db", db, "--json"])
        XCTAssertEqual(stats2.stdout, stats.stdout)
    }

    func testBadInputGivesClearErrorsAndExitCodes() throws {
        let db = tempDB()
        let bad = try run(["ingest", Self.fixtures + "/malformed.xml", Self.fixtures + "/structured.xml", "--db", db])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("malformed.xml:11:"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("(after PMID 7000002)"), bad.stderr)
        let kept = try run(["show", "7000001", "--db", db])
        XCTAssertEqual(kept.status, 0, "the record before the error was committed: \(kept.stderr)")

        let going = try run(["ingest", Self.fixtures + "/malformed.xml", Self.fixtures + "/structured.xml", "--db", db, "--keep-going"])
        XCTAssertEqual(going.status, 1, "bad files still fail the run")
        XCTAssertEqual(try run(["show", "9000001", "--db", db]).status, 0, "the good file after it was ingested")

        let notPubMed = try run(["ingest", Self.fixtures + "/notpubmed.xml", "--db", db])
        XCTAssertTrue(notPubMed.stderr.contains("no PubmedArticle in"), notPubMed.stderr)
        XCTAssertTrue(notPubMed.stderr.contains("root element <catalog>"), notPubMed.stderr)

        let truncated = try run(["ingest", Self.fixtures + "/truncated.xml.gz", "--db", db])
        XCTAssertEqual(truncated.status, 1)
        XCTAssertTrue(truncated.stderr.contains("truncated gzip"), truncated.stderr)

        let missing = try run(["ingest", "/no/such/file.xml", "--db", db])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("/no/such/file.xml"), missing.stderr)

        let noCorpus = try run(["stats", "--db", "/tmp/definitely-missing-\(getpid()).sqlite"])
        XCTAssertEqual(noCorpus.status, 1)
        XCTAssertTrue(noCorpus.stderr.contains("no corpus at"), noCorpus.stderr)

        let unknown = try run(["show", "123", "--db", db])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("no document 123"), unknown.stderr)

        let invalid = try run(["ingest", Self.fixtures, "--db", db, "--max-words", "3"])
        XCTAssertNotEqual(invalid.status, 0)
        XCTAssertTrue(invalid.stderr.contains("--max-words must be at least 16"), invalid.stderr)
    }

    func testInterruptWithSIGINTCommitsWhatWasRead() throws {
        let db = tempDB()
        let big = Self.repo.appendingPathComponent("data/pubmed_baseline/pubmed21n1298.xml.gz").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["ingest", big, "--db", db, "--json", "--batch-size", "200"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = Pipe()
        try p.run()
        // Wait until something has been committed, then interrupt.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (try? FileManager.default.attributesOfItem(atPath: db + "-wal")[.size] as? Int) ?? 0 < 4_000_000 {
            usleep(50_000)
        }
        p.interrupt()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        let report = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let partial = report?["documentsRead"] as? Int ?? -1
        XCTAssertGreaterThan(partial, 0)
        XCTAssertLessThan(partial, 20788)
        let stats = try run(["stats", "--db", db, "--json"])
        let s = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(s?["files"] as? Int, 0, "an interrupted file is not marked done")
        XCTAssertGreaterThan(s?["documents"] as? Int ?? 0, 0)
    }
}
