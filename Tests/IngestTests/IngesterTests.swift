import XCTest
@testable import Ingest

final class IngesterTests: XCTestCase {
    /// The per-process folder of `temporaryDatabase()` (its files go after each test).
    override class func tearDown() {
        try? FileManager.default.removeItem(at: Paths.scratch)
        super.tearDown()
    }

    private func ingest(_ store: CorpusStore, _ names: [String], keepGoing: Bool = false, force: Bool = false,
                        batchSize: Int = 512, stop: @escaping @Sendable () -> Bool = { false }) throws -> Ingester.Report {
        var o = Ingester.Options()
        o.keepGoing = keepGoing; o.force = force; o.batchSize = batchSize
        return try Ingester(store: store, options: o).ingest(paths: names.map(Paths.fixture), shouldStop: stop)
    }

    private func keys(_ store: CorpusStore) throws -> [String] {
        let st = try store.db.prepare("SELECT key FROM documents ORDER BY key")
        var out: [String] = []
        while try st.step() { out.append(st.string(0)!) }
        return out
    }

    /// Everything that defines the corpus, to compare runs.
    private func snapshot(_ store: CorpusStore) throws -> [String] {
        let st = try store.db.prepare("""
        SELECT d.key, d.version, d.title, d.text, p.ordinal, p.section, p.start, p.end, p.text
        FROM documents d LEFT JOIN passage_texts p ON p.doc_id = d.id ORDER BY d.key, p.ordinal
        """)
        var out: [String] = []
        while try st.step() { out.append((0..<9).map { st.string(Int32($0)) ?? "-" }.joined(separator: "|")) }
        return out
    }

    func testStoresDocumentsPassagesMeshAndFTS() throws {
        let store = try CorpusStore(path: temporaryDatabase())
        let r = try ingest(store, ["structured.xml"])
        XCTAssertEqual(r.documentsRead, 3)
        XCTAssertEqual(r.inserted, 3)
        XCTAssertEqual(r.withoutText, 1)
        let s = try store.stats()
        XCTAssertEqual(s.documents, 3)
        XCTAssertEqual(s.meshTerms, 3)
        XCTAssertEqual(s.documentsWithoutPassages, 1)
        XCTAssertEqual(s.passages, r.passages)
        let doc = try XCTUnwrap(store.document(key: "9000001"))
        XCTAssertEqual(doc.document.mesh.first?.qualifiers, ["drug effects", "metabolism"])
        XCTAssertEqual(doc.document.sections.map(\.name), ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"])
        // Provenance: each passage is exactly its range of the stored text.
        let scalars = Array(doc.document.text.unicodeScalars)
        for (_, p) in doc.passages {
            var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[p.start..<p.end])
            XCTAssertEqual(String(v), p.text)
        }
        let hits = try store.searchBM25("lactamase resistance", limit: 5)
        XCTAssertEqual(hits.first?.documentKey, "9000001")
        XCTAssertEqual(hits.first?.title, doc.document.title)
    }

    func testUpdateFileReplacesDeletesAndKeepsNewerVersion() throws {
        let store = try CorpusStore(path: temporaryDatabase())
        try ingest(store, ["structured.xml"])
        let r = try ingest(store, ["update.xml"])
        XCTAssertEqual(r.replaced, 1)
        XCTAssertEqual(r.olderVersionSkipped, 1)
        XCTAssertEqual(r.deleted, 1, "9000002 existed, 9999999 did not")
        XCTAssertEqual(try keys(store), ["9000001", "9000003"])
        XCTAssertEqual(try store.document(key: "9000001")?.document.title, "Revised title of the first record.")
        XCTAssertEqual(try store.document(key: "9000003")?.document.version, 2)
        // Deleted and replaced text must be gone from BM25 too.
        XCTAssertTrue(try store.searchBM25("Escherichia lactamase café").isEmpty)
        XCTAssertEqual(try store.searchBM25("revised").map(\.documentKey), ["9000001"])
        XCTAssertEqual(try store.db.scalarInt("SELECT count(*) FROM mesh_terms"), 0, "old MeSH rows went with the old record")
    }

    func testIngestingTwiceLeavesTheSameCorpus() throws {
        let store = try CorpusStore(path: temporaryDatabase())
        try ingest(store, ["structured.xml", "medline_old.xml"])
        let first = try snapshot(store)
        let skipped = try ingest(store, ["structured.xml", "medline_old.xml"])
        XCTAssertEqual(skipped.filesSkippedUnchanged, 2)
        let forced = try ingest(store, ["structured.xml", "medline_old.xml"], force: true)
        XCTAssertEqual(forced.unchanged, 4)
        XCTAssertEqual(forced.inserted, 1, "8000001 was deleted by its own file and comes back before the deletion")
        XCTAssertEqual(try snapshot(store), first)
    }

    func testDuplicatePMIDInOneFileLaterWins() throws {
        let store = try CorpusStore(path: temporaryDatabase())
        let r = try ingest(store, ["duplicate.xml"])
        XCTAssertEqual(r.duplicatesInFile, 1)
        XCTAssertTrue(r.messages.contains { $0.contains("duplicate PMID 6000001") && $0.contains("duplicate.xml:") }, "\(r.messages)")
        XCTAssertEqual(try store.document(key: "6000001")?.document.title, "Second copy.")
        XCTAssertEqual(try store.stats().documents, 1)
    }

    func testMalformedFileKeepsCommittedRecordsAndFailsUnlessKeepGoing() throws {
        let store = try CorpusStore(path: temporaryDatabase())
        XCTAssertThrowsError(try ingest(store, ["malformed.xml", "structured.xml"])) { error in
            guard let f = error as? IngestFailure, case .malformedXML = f.error else { return XCTFail("\(error)") }
            XCTAssertEqual(f.report.inserted, 1)
            XCTAssertEqual(f.report.filesFailed, 1)
        }
        XCTAssertEqual(try keys(store), ["7000001"], "the record before the error is committed; the next file is not read")
        let r = try ingest(store, ["malformed.xml", "structured.xml"], keepGoing: true)
        XCTAssertEqual(r.filesFailed, 1)
        XCTAssertEqual(r.resumedRecords, 1, "the committed record before the error is skipped, not read again")
        XCTAssertEqual(r.unchanged, 0)
        XCTAssertTrue(r.messages.first?.contains("malformed.xml:11:") ?? false, "\(r.messages)")
        XCTAssertEqual(try keys(store), ["7000001", "9000001", "9000002", "9000003"])
    }

    func testInterruptionCommitsWholeBatchesAndResumes() throws {
        let path = temporaryDatabase()
        let store = try CorpusStore(path: path)
        let realFile = Paths.pubmedSamples.appendingPathComponent("qi29_main_finding_pubmed_result.xml").path
        let calls = Counter()
        var o = Ingester.Options()
        o.batchSize = 10
        XCTAssertThrowsError(try Ingester(store: store, options: o).ingest(paths: [realFile], shouldStop: { calls.next() > 35 })) { error in
            guard let f = error as? IngestFailure, case .interrupted = f.error else { return XCTFail("\(error)") }
        }
        let partial = try store.stats().documents
        XCTAssertGreaterThan(partial, 0)
        XCTAssertLessThan(partial, 121)
        XCTAssertEqual(try store.db.scalarInt("SELECT count(*) FROM passages_fts"), try store.stats().passages,
                       "what is committed is complete: every passage is in the FTS index")
        // A new connection (as after a kill) sees a consistent corpus, and a re-run completes it,
        // skipping the committed records instead of reading them into the store again.
        let again = try CorpusStore(path: path)
        let r = try Ingester(store: again, options: o).ingest(paths: [realFile])
        XCTAssertEqual(r.resumedRecords, partial)
        XCTAssertEqual(r.inserted, 121 - partial)
        XCTAssertEqual(r.unchanged, 0)
        XCTAssertEqual(try again.stats().documents, 121)
        XCTAssertEqual(try again.db.scalarInt("SELECT count(*) FROM passages_fts"), try again.stats().passages)
        XCTAssertEqual(try again.db.scalarInt("SELECT documents FROM ingested_files"), 121, "the file's count spans both runs")
        XCTAssertEqual(try again.db.scalarInt("SELECT count(*) FROM file_progress"), 0, "a finished file keeps no partial progress")
        // The result equals an uninterrupted run's, row for row.
        let once = try CorpusStore(path: temporaryDatabase())
        _ = try Ingester(store: once, options: o).ingest(paths: [realFile])
        func rows(_ s: CorpusStore) throws -> [String] {
            let stmt = try s.db.prepare("SELECT d.id, d.key, d.title, d.text, p.id, p.start, p.end FROM passages p JOIN documents d ON d.id = p.doc_id ORDER BY p.id")
            var out: [String] = []
            while try stmt.step() { out.append((0..<7).map { stmt.string(Int32($0)) ?? "" }.joined(separator: "|")) }
            return out
        }
        XCTAssertEqual(try rows(again), try rows(once))
    }

    func testPathExpansionDirectoriesGlobsAndErrors() throws {
        let dir = Paths.pubmedFixtures.path
        let all = try Ingester.expand([dir])
        XCTAssertEqual(all.map { ($0.path as NSString).lastPathComponent },
                       ["duplicate.xml", "malformed.xml", "medline_old.xml", "notpubmed.xml", "structured.xml", "structured.xml.gz", "truncated.xml.gz", "update.xml"])
        XCTAssertEqual(try Ingester.expand([dir + "/struct*.xml*"]).count, 2)
        XCTAssertThrowsError(try Ingester.expand([dir + "/nothing*.xml"])) { XCTAssertEqual($0 as? IngestError, .noInputs(path: dir + "/nothing*.xml")) }
        XCTAssertThrowsError(try Ingester.expand(["/no/such/file.xml"]))
        XCTAssertThrowsError(try Ingester.expand([Paths.repo.appendingPathComponent("Package.swift").path])) { error in
            XCTAssertTrue("\(error)".contains("unsupported file type"), "\(error)")
        }
    }

    func testTwoConnectionsCreatingOneNewCorpusAtOnceBothSucceed() throws {
        // Two writers opening a new file at the same moment: the schema is created once, under the write lock.
        for _ in 0..<20 {
            let path = temporaryDatabase()
            let lock = NSLock()
            nonisolated(unsafe) var failures: [String] = []
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                do { _ = try CorpusStore(path: path) } catch { lock.withLock { failures.append("\(error)") } }
            }
            XCTAssertEqual(failures, [])
            XCTAssertEqual(try CorpusStore(path: path).db.scalarInt("PRAGMA user_version"), 1)
        }
    }

    func testSchemaVersionAndNewerSchemaIsRefused() throws {
        let path = temporaryDatabase()
        do {
            let store = try CorpusStore(path: path)
            XCTAssertEqual(try store.db.scalarInt("PRAGMA user_version"), CorpusStore.schemaVersion)
            try store.db.execute("PRAGMA user_version = 99")
        }
        XCTAssertThrowsError(try CorpusStore(path: path)) { error in
            XCTAssertEqual(error as? IngestError, .schemaTooNew(file: path, found: 99, supported: CorpusStore.schemaVersion))
        }
    }

    func testRealFilesIngestEndToEnd() throws {
        let store = try CorpusStore(path: temporaryDatabase())
        let dir = Paths.pubmedSamples.path
        let r = try Ingester(store: store).ingest(paths: [dir])
        XCTAssertEqual(r.documentsRead, 819)
        XCTAssertEqual(try store.stats().documents, 819)
        let hits = try store.searchBM25("budesonide formoterol mild asthma", limit: 3)
        XCTAssertEqual(hits.first?.pmid, 29768149)
        // One transaction spanned several reader chunks while a second connection checkpointed.
        XCTAssertEqual(try store.db.scalarText("PRAGMA integrity_check"), "ok")
        try store.db.execute("INSERT INTO passages_fts(passages_fts, rank) VALUES('integrity-check', 1)")
        XCTAssertEqual(try store.db.scalarInt("SELECT count(*) FROM passages_fts"), try store.stats().passages)
        XCTAssertEqual(try store.db.scalarInt("PRAGMA wal_autocheckpoint"), 8192, "the writer's own checkpoints are back")
    }
}

final class Counter: @unchecked Sendable {
    private var n = 0
    private let lock = NSLock()
    func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
}
