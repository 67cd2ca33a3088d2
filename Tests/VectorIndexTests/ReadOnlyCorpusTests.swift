import Foundation
import Ingest
import SQLiteDB
import XCTest
import TestSupport
@testable import VectorIndex

// Read commands open the corpus read-only through `Retriever.open(db:…)`: they never change the
// file, not even to save a stale HNSW graph, and under WAL two readers search while a writer
// ingests and embeds (real SQLite files, real MiniLM). An extension of `RetrievalEndToEndTests`,
// whose class teardown removes the shared corpus.
extension RetrievalEndToEndTests {
    /// A copy of the embedded corpus whose saved graph is stale (one document deleted after it
    /// was saved), fully checkpointed and closed; returns its path.
    func staleCopy(_ c: RetrievalCorpus) throws -> String {
        let store = try c.copy(self)
        let key = try XCTUnwrap(c.documents.first { !$0.text.isEmpty }).key
        XCTAssertEqual(try store.corpus.db.transaction { try store.corpus.delete(keys: [key]) }, 1)
        try store.corpus.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return store.corpus.db.path
    }

    func testReadersLeaveTheFileAndTheGraphUntouched() throws {
        let c = try corpus()
        let path = try staleCopy(c)
        do {   // New passages embedded without updating the graph: a writer would add and save them.
            let store = try VectorStore(corpus: CorpusStore(path: path))
            _ = try Ingester(store: store.corpus).ingest(paths: [RetrievalCorpus.extraFile])
            XCTAssertGreaterThan(try store.embedPending(with: c.embedder).embedded, 0)
            try store.corpus.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let graph = try XCTUnwrap(VectorStore(corpus: CorpusStore(path: path, readOnly: true)).loadGraph(name: DenseIndex.graphName))

        do {
            let retriever = try Retriever.open(db: path, embedder: { c.embedder })
            XCTAssertTrue(retriever.vectors.isReadOnly)
            XCTAssertEqual(retriever.defaultMode, .hybrid)
            for (mode, _) in allModes {
                XCTAssertFalse(try retriever.search(c.documents[1].title, k: 5, mode: mode).isEmpty, "\(mode)")
            }
            // The stale graph is brought up to date in memory only.
            let loaded = try XCTUnwrap(DenseIndex.load(retriever.vectors, kind: .hnsw))
            XCTAssertGreaterThan(loaded.report.added, 0)
            XCTAssertFalse(loaded.report.saved)
            let store = try CorpusStore(path: path, readOnly: true)
            XCTAssertGreaterThan(try store.stats().documents, 0)
            XCTAssertNotNil(try store.document(key: c.documents[1].key))
            XCTAssertThrowsError(try store.db.execute("DELETE FROM documents")) { XCTAssertEqual(($0 as? SQLiteError)?.code, 8) }
        }

        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), bytes, "the corpus file changed")
        let after = try XCTUnwrap(VectorStore(corpus: CorpusStore(path: path, readOnly: true)).loadGraph(name: DenseIndex.graphName))
        XCTAssertEqual(after.data, graph.data, "the HNSW blob was rewritten")
        // A writer does save the updated graph: the graph above really was stale.
        XCTAssertTrue(try XCTUnwrap(DenseIndex.load(VectorStore(corpus: CorpusStore(path: path)), kind: .hnsw)).report.saved)
    }

    /// A never-embedded corpus opened read-only has no vector tables: it reads as empty (BM25 only).
    func testReadOnlyCorpusWithoutVectorsSearchesBM25() throws {
        let path = RetrievalCorpus.tempPath("bm25")
        removeAfterTest(path)
        _ = try Ingester(store: CorpusStore(path: path)).ingest(paths: [RetrievalCorpus.extraFile])
        let extra = try extraDocument()
        let retriever = try Retriever.open(db: path, embedder: { XCTFail("no embedder needed"); return try corpus().embedder })
        XCTAssertEqual(retriever.defaultMode, .bm25)
        XCTAssertEqual(try retriever.vectors.pendingCount(), try retriever.vectors.corpus.passageCount())
        XCTAssertEqual(try retriever.search(extra.title, mode: .bm25).first?.documentKey, extra.key)
        XCTAssertThrowsError(try Retriever.open(db: path, embedder: { try corpus().embedder }, dense: .required)) {
            XCTAssertEqual($0 as? RetrievalError, .notEmbedded(db: path))
        }
        XCTAssertThrowsError(try Retriever.open(db: path + ".missing", embedder: { try corpus().embedder })) {
            XCTAssertEqual($0 as? RetrievalError, .noCorpus(db: path + ".missing"))
        }
    }

    /// Two readers search in every mode while one writer ingests a file and embeds its passages
    /// in small transactions; nobody waits for a lock or fails, and a reader opened afterwards
    /// sees the new document.
    func testTwoReadersAndOneWriterAtOnce() throws {
        let c = try corpus()
        let path = try staleCopy(c)
        // Each thread has its own connection and its own embedder.
        let readers = try (0..<2).map { _ in
            try Retriever.open(db: path, embedder: { try MiniLMEmbedder(modelDirectory: MiniLMFixtures.modelPath()) })
        }
        let errors = Shared<[String]>([])
        let writerDone = Shared(false)
        let searches = Shared(0)
        let group = DispatchGroup()
        func thread(_ name: String, _ body: @escaping @Sendable () throws -> Void) {
            group.enter()
            let t = Thread {
                do { try body() } catch { errors.withLock { $0.append("\(name): \(error)") } }
                group.leave()
            }
            t.start()
        }
        for (i, reader) in readers.enumerated() {
            thread("reader \(i)") {
                var n = 0
                while !writerDone.withLock({ $0 }) || n < 3 {
                    let (mode, _) = allModes[n % allModes.count]
                    XCTAssertFalse(try reader.search(c.documents[(n + i) % c.documents.count].title, k: 5, mode: mode).isEmpty)
                    n += 1
                }
                searches.withLock { $0 += n }
            }
        }
        thread("writer") {
            defer { writerDone.withLock { $0 = true } }
            let store = try VectorStore(corpus: CorpusStore(path: path))
            _ = try Ingester(store: store.corpus).ingest(paths: [RetrievalCorpus.extraFile])
            _ = try store.embedPending(with: c.embedder, batchSize: 1)
            XCTAssertEqual(try store.pendingCount(), 0)
        }
        group.wait()
        XCTAssertEqual(errors.withLock { $0 }, [])
        print("two readers ran \(searches.withLock { $0 }) searches beside the writer")

        let extra = try extraDocument()
        let fresh = try Retriever.open(db: path, embedder: { c.embedder })
        XCTAssertEqual(try fresh.search(extra.title, k: 1, mode: .hybrid).first?.documentKey, extra.key)
    }

    /// The first document of `RetrievalCorpus.extraFile`.
    func extraDocument() throws -> Document {
        var docs: [Document] = []
        try PubMedReader().read(file: RetrievalCorpus.extraFile) { if case .document(let d) = $0 { docs.append(d) } }
        return try XCTUnwrap(docs.first)
    }
}

/// A value shared between threads, behind a lock.
final class Shared<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}
