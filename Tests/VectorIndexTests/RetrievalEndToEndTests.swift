import Foundation
import Ingest
import XCTest
import TestSupport
@testable import VectorIndex

// End to end over real data: a real PubMed file (93 articles, 171 passages) ingested into a
// temporary SQLite corpus, embedded with the real MiniLM model, searched in every mode.

// MARK: - Fixture

/// One ingested and embedded corpus shared by the tests of this file (embedding is the slow
/// part); each test that changes the corpus works on its own copy (`VACUUM INTO`).
final class RetrievalCorpus: @unchecked Sendable {
    static let file = RepositoryFiles.pubmedSample("xizhou_pubMR_pubmed_result.xml")
    static let extraFile = RepositoryFiles.pubmedSample("pubmed-29768149.xml")

    static let shared = Result { try RetrievalCorpus() }
    /// Where `shared` keeps its corpus; removed by `RetrievalEndToEndTests.tearDown()` (its only user).
    static let basePath = RetrievalCorpus.tempPath("base")

    let path: String
    let embedder: MiniLMEmbedder
    /// The documents of `file`, in file order.
    let documents: [Document]
    let passages: Int

    private init() throws {
        path = RetrievalCorpus.basePath
        embedder = try MiniLMEmbedder(modelDirectory: MiniLMFixtures.modelPath())
        let corpus = try CorpusStore(path: path)
        let report = try Ingester(store: corpus).ingest(paths: [Self.file])
        passages = report.passages
        let store = try VectorStore(corpus: corpus)
        let run = try store.embedPending(with: embedder, batchSize: 64)
        precondition(run.embedded == passages, "fixture embedded \(run.embedded) of \(passages)")
        _ = try DenseIndex.load(store, kind: .hnsw)     // builds and saves the graph
        var docs: [Document] = []
        try PubMedReader().read(file: Self.file) { if case .document(let d) = $0 { docs.append(d) } }
        documents = docs
    }

    static func tempPath(_ tag: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("retrieval-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
    }

    /// A private copy of the embedded corpus, removed after `test`.
    func copy(_ test: XCTestCase) throws -> VectorStore {
        let target = Self.tempPath("copy")
        test.removeAfterTest(target)
        try CorpusStore(path: path).db.execute("VACUUM INTO '\(target)'")
        return try VectorStore(corpus: CorpusStore(path: target))
    }

    /// A retriever over `store` with a freshly loaded dense index.
    func retriever(_ store: VectorStore, kind: DenseIndex.Kind) throws -> Retriever {
        Retriever(vectors: store, embedder: embedder, index: try DenseIndex.load(store, kind: kind)?.index)
    }
}

/// Each (mode, dense index) pair under test.
let allModes: [(SearchMode, DenseIndex.Kind)] = [(.dense, .exact), (.dense, .hnsw), (.bm25, .hnsw), (.hybrid, .exact), (.hybrid, .hnsw)]

final class RetrievalEndToEndTests: XCTestCase {
    func corpus() throws -> RetrievalCorpus { try RetrievalCorpus.shared.get() }

    /// The shared corpus goes (with its SQLite side files) when this class, its only user, is done.
    override class func tearDown() {
        removeWithSideFiles(RetrievalCorpus.basePath)
        super.tearDown()
    }

    // MARK: Ranking

    /// A query made from an article's title finds that article in the top 10 always and in the
    /// top 3 for at least 85% of the titles, in every mode; the hits carry their provenance.
    func testTitleQueriesFindTheirArticleInEveryMode() throws {
        let c = try corpus()
        let store = try VectorStore(corpus: CorpusStore(path: c.path))
        let keys = try store.corpus.db.prepare("SELECT DISTINCT d.key FROM documents d JOIN passages p ON p.doc_id = d.id")
        var withText = Set<String>()
        while try keys.step() { withText.insert(keys.string(0) ?? "") }
        let picked = stride(from: 0, to: c.documents.count, by: 6).map { c.documents[$0] }.filter { withText.contains($0.key) }
        XCTAssertGreaterThanOrEqual(picked.count, 12)
        for (mode, kind) in allModes {
            let r = try c.retriever(store, kind: kind)
            var ranks: [Int] = []
            for doc in picked {
                let hits = try r.search(doc.title, k: 10, mode: mode)
                XCTAssertEqual(hits.count, 10, "\(mode)/\(kind) \(doc.key)")
                XCTAssertEqual(hits.map(\.rank), Array(1...10))
                XCTAssertEqual(hits.map(\.score), hits.map(\.score).sorted(by: >), "scores descend")
                guard let at = hits.firstIndex(where: { $0.pmid == doc.pmid }) else {
                    XCTFail("\(mode)/\(kind): PMID \(doc.key) not in top 10 for its title \"\(doc.title)\": \(hits.map(\.pmid))")
                    continue
                }
                ranks.append(at + 1)
                let hit = hits[at]
                XCTAssertEqual(hit.documentKey, doc.key)
                XCTAssertEqual(hit.title, doc.title)
                XCTAssertEqual(hit.year, doc.year)
                XCTAssertEqual(hit.journal, doc.journalAbbrev ?? doc.journal)
                XCTAssertFalse(hit.section.isEmpty)
                XCTAssertTrue(doc.text.contains(hit.text), "hit text is a span of the article")
                if mode == .dense { XCTAssertGreaterThan(hit.score, 0.5, "cosine of a title to its own article") }
            }
            let top3 = Double(ranks.filter { $0 <= 3 }.count) / Double(picked.count)
            print("\(mode)/\(kind): own-PMID ranks for \(picked.count) titles \(ranks), top-3 rate \(top3)")
            XCTAssertGreaterThanOrEqual(top3, 0.85, "\(mode)/\(kind)")
        }
    }

    // MARK: Filters

    /// Year, journal and MeSH filters hold for every hit in every mode, and do remove something.
    func testFiltersApplyInEveryMode() throws {
        let c = try corpus()
        let store = try VectorStore(corpus: CorpusStore(path: c.path))
        let meshOf = Dictionary(c.documents.map { ($0.pmid ?? 0, Set($0.mesh.map { $0.descriptor.lowercased() })) }, uniquingKeysWith: { a, _ in a })
        let filters: [(String, SearchFilter, (SearchHit) -> Bool)] = [
            ("years 2018", SearchFilter(years: 2018...2018), { $0.year == 2018 }),
            ("journal Nature", SearchFilter(journal: "nature"), { $0.journal == "Nature" }),
            ("MeSH Animals", SearchFilter(mesh: "Animals"), { meshOf[$0.pmid ?? 0]?.contains("animals") ?? false }),
            ("2017 + Humans", SearchFilter(years: 2017...2017, mesh: "humans"),
             { $0.year == 2017 && meshOf[$0.pmid ?? 0]?.contains("humans") ?? false }),
        ]
        let query = "serine phosphorylation promotes tumor cell proliferation"
        for (mode, kind) in allModes {
            let r = try c.retriever(store, kind: kind)
            let unfiltered = try r.search(query, k: 20, mode: mode)
            for (name, filter, admits) in filters {
                let hits = try r.search(query, k: 20, mode: mode, filter: filter)
                XCTAssertFalse(hits.isEmpty, "\(mode)/\(kind) \(name)")
                for h in hits { XCTAssertTrue(admits(h), "\(mode)/\(kind) \(name): PMID \(h.pmid ?? 0) (\(h.year ?? 0), \(h.journal ?? "-")) passed") }
                XCTAssertTrue(unfiltered.contains { !admits($0) }, "\(name) must exclude some unfiltered hit")
            }
        }
    }

    // MARK: Incremental and resumable

    /// Adding a file embeds only its passages; the stored vectors and the saved graph are kept.
    func testIncrementalEmbedOnlyEmbedsNewPassages() throws {
        let c = try corpus()
        let store = try c.copy(self)
        let before = try store.loadAll()
        let report = try Ingester(store: store.corpus).ingest(paths: [RetrievalCorpus.extraFile])
        XCTAssertEqual(report.inserted, 1)
        XCTAssertEqual(try store.pendingCount(), report.passages)
        let run = try store.embedPending(with: c.embedder, batchSize: 2)
        XCTAssertEqual(run.embedded, report.passages)
        XCTAssertEqual(try store.pendingCount(), 0)
        let after = try store.loadAll()
        XCTAssertEqual(after.ids.count, before.ids.count + report.passages)
        XCTAssertEqual(Array(after.ids.prefix(before.ids.count)), before.ids)
        XCTAssertEqual(Array(after.values.prefix(before.values.count)), before.values, "old vectors untouched")
        let loaded = try XCTUnwrap(DenseIndex.load(store, kind: .hnsw))
        XCTAssertFalse(loaded.report.rebuilt, "the saved graph is reused")
        XCTAssertEqual(loaded.report.added, report.passages)
        XCTAssertEqual(loaded.report.removed, 0)
        let hits = try Retriever(vectors: store, embedder: c.embedder, index: loaded.index)
            .search("Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma", k: 1, mode: .dense)
        XCTAssertEqual(hits.first?.pmid, 29768149)
        XCTAssertEqual(try store.embedPending(with: c.embedder).embedded, 0, "nothing left to embed")
    }

    /// A run stopped after some batches keeps them; the next run embeds exactly the rest.
    func testResumeAfterInterruption() throws {
        let c = try corpus()
        let store = try c.copy(self)
        try store.reset()
        XCTAssertEqual(try store.pendingCount(), c.passages)
        var calls = 0
        let first = try store.embedPending(with: c.embedder, batchSize: 8) { done, _ in
            calls += 1
            return done >= 24 ? .stop : .more
        }
        XCTAssertTrue(first.stopped)
        XCTAssertEqual(first.embedded, 24)
        XCTAssertEqual(calls, 3)
        XCTAssertEqual(try store.count(), 24)
        let second = try store.embedPending(with: c.embedder, batchSize: 64)
        XCTAssertFalse(second.stopped)
        XCTAssertEqual(second.embedded, c.passages - 24)
        XCTAssertEqual(try store.pendingCount(), 0)
        // Resumed vectors equal the uninterrupted fixture's (batching does not change a vector).
        let fresh = try VectorStore(corpus: CorpusStore(path: c.path)).loadAll()
        let resumed = try store.loadAll()
        XCTAssertEqual(resumed.ids, fresh.ids)
        let maxDiff = zip(resumed.values, fresh.values).map { abs($0 - $1) }.max() ?? 0
        print("resumed vs uninterrupted embeddings: max |difference| \(maxDiff)")
        XCTAssertLessThan(maxDiff, 1e-5)
    }

    // MARK: Deleted and replaced articles

    /// A deleted or re-ingested (replaced) article's old passages never come back from any mode,
    /// whether the dense index was loaded before the change (stale) or after (updated).
    func testDeletedAndReplacedPMIDsNeverComeBack() throws {
        let c = try corpus()
        let store = try c.copy(self)
        let deleted = c.documents[3], replaced = c.documents[7]
        let oldPassages = try passageIDs(store, key: replaced.key)
        XCTAssertFalse(oldPassages.isEmpty)
        let stale = try allModes.map { try c.retriever(store, kind: $0.1) }

        XCTAssertEqual(try store.corpus.delete(keys: [deleted.key]), 1)
        var revised = replaced
        revised.title = "Revised: " + replaced.title
        let result = try store.corpus.db.transaction {
            try store.corpus.upsert(revised, passages: Chunker().chunk(revised))
        }
        XCTAssertEqual(result, .replaced)
        let newPassages = try passageIDs(store, key: replaced.key)
        XCTAssertTrue(Set(newPassages).isDisjoint(with: oldPassages), "passage ids are never reused")
        XCTAssertEqual(try store.pendingCount(), newPassages.count, "old vectors left with their passages")

        func check(_ r: Retriever, _ mode: SearchMode, _ label: String) throws {
            for query in [deleted.title, replaced.title] {
                let hits = try r.search(query, k: 20, mode: mode)
                XCTAssertFalse(hits.isEmpty, label)
                XCTAssertFalse(hits.contains { $0.pmid == deleted.pmid }, "\(label): deleted PMID \(deleted.pmid!) came back")
                XCTAssertFalse(hits.contains { oldPassages.contains($0.passageID) }, "\(label): a replaced passage came back")
            }
        }
        for ((mode, kind), r) in zip(allModes, stale) { try check(r, mode, "stale \(mode)/\(kind)") }
        let loaded = try XCTUnwrap(DenseIndex.load(store, kind: .hnsw))
        // Graph nodes whose vectors are gone load as tombstones: no rebuild, never returned.
        XCTAssertFalse(loaded.report.rebuilt)
        XCTAssertEqual(loaded.index.count, try store.count())
        let gone = oldPassages + (try passageIDs(VectorStore(corpus: CorpusStore(path: c.path)), key: deleted.key))
        for id in gone { XCTAssertFalse(loaded.index.contains(id: id), "passage \(id) still in the reloaded graph") }
        for (mode, kind) in allModes { try check(try c.retriever(store, kind: kind), mode, "reloaded \(mode)/\(kind)") }

        // Once embedded, the revised article is found again under its new passages only.
        _ = try store.embedPending(with: c.embedder)
        for (mode, kind) in allModes {
            let hits = try c.retriever(store, kind: kind).search(revised.title, k: 3, mode: mode)
            XCTAssertTrue(hits.contains { newPassages.contains($0.passageID) }, "\(mode)/\(kind) finds the revision")
            XCTAssertFalse(hits.contains { oldPassages.contains($0.passageID) })
        }
    }

    func passageIDs(_ store: VectorStore, key: String) throws -> [Int64] {
        let st = try store.corpus.db.prepare("SELECT p.id FROM passages p JOIN documents d ON d.id = p.doc_id WHERE d.key = ?")
        try st.bind([.text(key)])
        var out: [Int64] = []
        while try st.step() { out.append(Int64(st.int(0))) }
        return out
    }

    // MARK: Errors

    /// Dense or hybrid search before anything is embedded names the corpus file; BM25 works.
    func testQueryBeforeEmbeddingIsATypedError() throws {
        let c = try corpus()
        let store = try c.copy(self)
        try store.reset()
        XCTAssertNil(try DenseIndex.load(store, kind: .hnsw))
        let r = Retriever(vectors: store, embedder: c.embedder, index: nil)
        for mode in [SearchMode.dense, .hybrid] {
            XCTAssertThrowsError(try r.search("serine", mode: mode)) {
                XCTAssertEqual($0 as? RetrievalError, .notEmbedded(db: store.corpus.db.path))
                XCTAssertTrue("\($0)".contains(store.corpus.db.path), "\($0)")
            }
        }
        XCTAssertFalse(try r.search("serine", mode: .bm25).isEmpty)
    }

    /// Vectors made by another model or dimension: storing, searching and embedding all refuse,
    /// naming both models and both dimensions; a saved graph of another model is not trusted.
    func testOtherModelOrDimensionIsNamed() throws {
        let c = try corpus()
        let store = try c.copy(self)
        try store.reset()
        let ids = try Array(passageIDs(store, key: c.documents[0].key).prefix(1))
        try store.store(ids: ids, vectors: [[Float](repeating: 0.5, count: 4)], modelID: "other-model", dimension: 4)
        let expected = RetrievalError.modelMismatch(stored: "other-model", storedDimension: 4,
                                                    requested: c.embedder.modelID, requestedDimension: 384)
        let index = try XCTUnwrap(DenseIndex.load(store, kind: .exact)).index
        for mode in [SearchMode.dense, .hybrid] {
            XCTAssertThrowsError(try Retriever(vectors: store, embedder: c.embedder, index: index).search("serine", mode: mode)) {
                XCTAssertEqual($0 as? RetrievalError, expected)
                let text = "\($0)"
                for part in ["other-model", "(4-d)", c.embedder.modelID, "(384-d)"] { XCTAssertTrue(text.contains(part), text) }
            }
        }
        XCTAssertThrowsError(try store.embedPending(with: c.embedder)) { XCTAssertEqual($0 as? RetrievalError, expected) }
        XCTAssertEqual(try store.count(), 1, "nothing embedded into a mixed store")
        // Same dimension, other model: a graph saved for it is rebuilt, never reused.
        let base = try c.copy(self)
        let graph = try XCTUnwrap(base.loadGraph(name: DenseIndex.graphName))
        try base.saveGraph(name: DenseIndex.graphName, modelID: "other-model", dimension: graph.dimension, vectors: 0, data: graph.data)
        XCTAssertEqual(try XCTUnwrap(DenseIndex.load(base, kind: .hnsw)).report.rebuilt, true)
    }

    /// A vector blob of the wrong length or with a NaN names the passage.
    func testCorruptVectorBlobNamesPassage() throws {
        let c = try corpus()
        let store = try c.copy(self)
        let victim = try store.loadAll().ids[5]
        try store.corpus.db.execute("UPDATE vectors SET vector = x'00000080FFFF' WHERE passage_id = \(victim)")
        for kind in DenseIndex.Kind.allCases {
            XCTAssertThrowsError(try DenseIndex.load(store, kind: kind)) {
                XCTAssertEqual($0 as? RetrievalError, .corruptVector(passageID: victim, bytes: 6, expected: 1536))
                XCTAssertTrue("\($0)".contains("passage \(victim)"), "\($0)")
            }
        }
        var nan = [Float](repeating: 0.05, count: 384)
        nan[17] = .nan
        try store.store(ids: [victim], vectors: [nan], modelID: c.embedder.modelID, dimension: 384)
        for kind in DenseIndex.Kind.allCases {
            XCTAssertThrowsError(try DenseIndex.load(store, kind: kind)) {
                XCTAssertEqual($0 as? VectorIndexError, .nonFiniteValue(id: victim, position: 17))
            }
        }
    }

    /// A model folder missing its weights names the file.
    func testMissingModelFileIsNamed() throws {
        let source = try MiniLMFixtures.modelPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minilm-partial-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name != "model.safetensors" {
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(name).path, withDestinationPath: source + "/" + name)
        }
        XCTAssertThrowsError(try MiniLMEmbedder(modelDirectory: dir.path)) {
            XCTAssertEqual($0 as? EmbedderError, .missingFile(file: dir.appendingPathComponent("model.safetensors").path))
            XCTAssertTrue($0.localizedDescription.contains("model.safetensors"), $0.localizedDescription)
        }
    }
}
