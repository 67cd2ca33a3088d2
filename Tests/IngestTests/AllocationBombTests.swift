import Foundation
import TestSupport
import XCTest
@testable import Ingest

/// Allocation bombs for the ingest readers: a 2 GB JSONL line (a sparse file: no disk used), a
/// gzip whose 270 KB inflate to 256 MB of one title, and a gzip whose trailer claims 4 GB. Each is
/// refused with an `IngestError` naming the file and line, without raising the peak RSS by more
/// than 64 MB (figures printed).
final class AllocationBombTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws { dir = try makeTemporaryDirectory("ingest-bomb") }

    func testJSONLLineOf2GB() throws {
        let path = dir.appendingPathComponent("line-2GB.jsonl").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(#"{"id": "1", "text": ""#.utf8)))
        XCTAssertEqual(truncate(path, 1 << 31), 0)  // a 2 GB line with no end, sparse
        let error = assertBombRefused("jsonl line of 2^31 bytes") { try JSONLReader().read(file: path) { _ in } }
        XCTAssertEqual(error as? IngestError, .badJSONLine(file: path, line: 1,
                                                           message: "line longer than 16777216 bytes (the limit on one JSONL record)"))
        // A configurable limit; the lines before the long one are read.
        try Data("{\"id\": 1, \"text\": \"a\"}\n{\"id\": 2, \"text\": \"\(String(repeating: "b", count: 100))\"}\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        var read = 0
        XCTAssertThrowsError(try JSONLReader(maxLineBytes: 64).read(file: path) { _ in read += 1 }) { error in
            XCTAssertEqual(error as? IngestError, .badJSONLine(file: path, line: 2,
                                                               message: "line longer than 64 bytes (the limit on one JSONL record)"))
        }
        XCTAssertEqual(read, 1)
    }

    /// `gzip -1` of a PubMed record whose title is 256 MB of one letter.
    func testGzipOfAHugeTitle() throws {
        let path = dir.appendingPathComponent("bomb.xml.gz").path
        let head = "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>"
        let tail = "</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
        let script = "{ printf '%s' '\(head)'; head -c 268435456 /dev/zero | tr '\\0' a; printf '%s' '\(tail)'; } | gzip -1 > '\(path)'"
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        try shell.run()
        shell.waitUntilExit()
        XCTAssertEqual(shell.terminationStatus, 0)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let error = assertBombRefused("gzip of \(size) bytes inflating to a 256 MB title", seconds: 10) {
            try PubMedReader().read(file: path) { _ in }
        }
        XCTAssertEqual(error as? IngestError, .badRecord(file: path, line: 1,
                                                         message: "the text of one field passes 16777216 bytes (after PMID 1)"))
    }

    /// A valid gzip whose trailer's length field says 4 GB, and the same file cut in half.
    func testGzipClaiming4GB() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("structured.xml.gz"))))
        for i in (bytes.count - 4)..<bytes.count { bytes[i] = 0xFF }
        let claimed = dir.appendingPathComponent("claims-4GB.xml.gz").path
        try Data(bytes).write(to: URL(fileURLWithPath: claimed))
        let error = assertBombRefused("gzip ISIZE 2^32-1") { _ = try readPubMed(claimed) }
        guard case let .malformedXML(file, _, _, message, _)? = error as? IngestError else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(file, claimed)
        XCTAssertTrue(message.contains("gzip"), message)

        let cut = dir.appendingPathComponent("cut.xml.gz").path
        try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: cut))
        let truncated = assertBombRefused("gzip cut in half") { _ = try readPubMed(cut) }
        guard case let .malformedXML(_, _, _, cutMessage, _)? = truncated as? IngestError else { return XCTFail("\(String(describing: truncated))") }
        XCTAssertTrue(cutMessage.contains("truncated gzip"), cutMessage)
    }
}
