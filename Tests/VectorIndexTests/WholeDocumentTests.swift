import Foundation
import Ingest
import XCTest
import TestSupport
@testable import VectorIndex

/// `Retriever.wholeDocuments`: each passage found brings its whole document, in document order, each
/// document once (real PubMed abstracts from `corpora/samples`, BM25).
final class WholeDocumentTests: XCTestCase {
    func testEachHitBringsItsWholeDocumentOnceInOrder() throws {
        let db = try makeTemporaryDirectory("whole-docs").appendingPathComponent("corpus.sqlite").path
        let store = try CorpusStore(path: db)
        _ = try Ingester(store: store).ingest(paths: [RepositoryFiles.pubmedSample("qi29_main_finding_pubmed_result.xml")])
        let retriever = Retriever(vectors: try VectorStore(corpus: store), embedder: nil, index: nil)
        let hits = try retriever.search("depression treatment outcome", k: 8, mode: .bm25)
        XCTAssertGreaterThan(hits.count, 2)
        let whole = try retriever.wholeDocuments(hits)

        // The documents in the order of their best hit, each once, with that hit's rank and score.
        var order: [String] = []
        for h in hits where !order.contains(h.documentKey) { order.append(h.documentKey) }
        var grouped: [String] = []
        for h in whole where grouped.last != h.documentKey { grouped.append(h.documentKey) }
        XCTAssertEqual(grouped, order, "one contiguous run per document, best first")
        for key in order {
            let stored = try XCTUnwrap(try store.document(key: key))
            let shown = whole.filter { $0.documentKey == key }
            XCTAssertEqual(shown.map(\.passageID), stored.passages.map { Int64($0.id) }, "every passage of \(key), in order")
            let best = try XCTUnwrap(hits.first { $0.documentKey == key })
            XCTAssertTrue(shown.allSatisfy { $0.rank == best.rank && $0.score == best.score })
            XCTAssertTrue(shown.contains { $0.passageID == best.passageID && $0.text == best.text })
        }
        XCTAssertTrue(order.contains { key in whole.filter { $0.documentKey == key }.count > 1 },
                      "some abstract has several passages (else the test shows nothing)")
        XCTAssertEqual(try retriever.wholeDocuments([]), [])
    }
}
