import Foundation
import XCTest
import TestSupport
@testable import Ingest

/// Paths shared by the Ingest tests.
enum Paths {
    /// The repository root, found from this file's location.
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Small real PubMed files tracked in the repository (`corpora/samples/pubmed_xml`).
    static let pubmedSamples = RepositoryFiles.pubmedSamples
    static let pubmedFixtures = repo.appendingPathComponent("Tests/IngestTests/Fixtures/pubmed")
    static func fixture(_ name: String) -> String { pubmedFixtures.appendingPathComponent(name).path }
}

extension Paths {
    /// The per-process folder of ``XCTestCase/temporaryDatabase(_:)``, removed by
    /// `IngesterTests.tearDown()` (its only user).
    static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("selfspec-tests-\(getpid())")
}

extension XCTestCase {
    /// A fresh database file per test, removed (with its SQLite side files) after the test.
    func temporaryDatabase(_ name: String = #function) -> String {
        let dir = Paths.scratch
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let clean = name.filter { $0.isLetter || $0.isNumber }
        let path = dir.appendingPathComponent("\(clean)-\(UUID().uuidString.prefix(8)).sqlite").path
        removeAfterTest(path)
        return path
    }
}

/// Reads all items of a PubMed file.
func readPubMed(_ path: String) throws -> [IngestItem] {
    var items: [IngestItem] = []
    try PubMedReader().read(file: path) { items.append($0) }
    return items
}

extension IngestItem {
    var document: Document? { if case .document(let d) = self { return d } else { return nil } }
    var deletion: Deletion? { if case .deletion(let d) = self { return d } else { return nil } }
}
