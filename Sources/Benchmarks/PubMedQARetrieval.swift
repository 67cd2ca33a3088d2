import Evaluation
import Foundation
import Ingest
import SQLiteDB
import VectorIndex

/// Retrieval quality on PubMedQA (pqal): each question should retrieve its own abstract (the
/// corpus holds the 500 abstracts as JSONL documents keyed by PMID, among real distractors).
public enum PubMedQARetrievalBenchmark {
    /// The questions evaluated: all, or those whose PMID is even or odd (tune on one, report the other).
    public enum Split: String, Sendable, CaseIterable { case all, even, odd }

    public struct Scores: Encodable, Sendable { public var mode: String, recallAt1: Double, recallAtK: Double, mrr: Double }
    public struct Result: Encodable, Sendable {
        public var questions: Int, documents: Int, passages: Int, k: Int, split: String, denseWeight: Double, scores: [Scores]
    }

    /// The questions of a pqal file, in PMID order.
    /// - Throws: `EvaluationError` for an unreadable file, or naming the record of a malformed one.
    public static func questions(file: String, split: Split) throws -> [(pmid: Int, question: String)] {
        let items = try EvalDataLoader.pubmedQA(EvalDataLoader.contents(of: file), file: file).compactMap { r in Int(r.pmid).map { ($0, r.question) } }
            .sorted { $0.0 < $1.0 }
        return split == .all ? items : items.filter { ($0.0 % 2 == 0) == (split == .even) }
    }

    /// Recall@1, recall@k and MRR@k of each question's own PMID, for bm25, dense and hybrid search.
    /// - Parameters:
    ///   - embeddedOnly: evaluate on a temporary copy without the documents that still have
    ///     unembedded passages, so all three modes search the same documents.
    ///   - denseWeight: the weight of the dense ranking in hybrid fusion (BM25 weight 1).
    /// - Throws: `BenchmarkError.missingDocuments` when the corpus lacks some questions' abstracts.
    public static func run(db: String, questions items: [(pmid: Int, question: String)], split: Split, k: Int,
                           denseWeight: Double, embeddedOnly: Bool, index: DenseIndex.Kind,
                           embedder: () throws -> any Embedder) throws -> Result {
        var path = db
        if embeddedOnly { path = try embeddedCopy(of: db) }
        defer { if embeddedOnly { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } } }
        let retriever = try Retriever.open(db: path, embedder: embedder, dense: .required, index: index)
        let store = retriever.vectors
        retriever.fusionWeights = (denseWeight, 1)
        let present = try Set(column(store.corpus.db, "SELECT pmid FROM documents WHERE pmid IS NOT NULL"))
        let missing = items.filter { !present.contains($0.pmid) }.count
        if missing > 0 { throw BenchmarkError.missingDocuments(db: db, missing: missing, questions: items.count) }

        var scores: [Scores] = []
        for mode in [SearchMode.bm25, .dense, .hybrid] {
            var r1 = 0, rk = 0, rr = 0.0
            for (pmid, question) in items {
                let hits = try retriever.search(question, k: k, mode: mode)
                guard let at = hits.firstIndex(where: { $0.pmid == pmid }) else { continue }
                if at == 0 { r1 += 1 }
                rk += 1
                rr += 1 / Double(at + 1)
            }
            let n = Double(max(items.count, 1))
            scores.append(Scores(mode: mode.rawValue, recallAt1: Measure.round(Double(r1) / n, 10000),
                                 recallAtK: Measure.round(Double(rk) / n, 10000), mrr: Measure.round(rr / n, 10000)))
        }
        return Result(questions: items.count, documents: try store.corpus.db.scalarInt("SELECT count(*) FROM documents"),
                      passages: try store.corpus.db.scalarInt("SELECT count(*) FROM passages"), k: k, split: split.rawValue,
                      denseWeight: denseWeight, scores: scores)
    }

    static func column(_ db: Database, _ sql: String) throws -> [Int] {
        let st = try db.prepare(sql)
        var out: [Int] = []
        while try st.step() { out.append(st.int(0)) }
        return out
    }

    /// A temporary copy of `db` without the documents that have an unembedded passage.
    static func embeddedCopy(of db: String) throws -> String {
        guard FileManager.default.fileExists(atPath: db) else { throw RetrievalError.noCorpus(db: db) }
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("pubmedqa-\(getpid()).sqlite").path
        try? FileManager.default.removeItem(atPath: target)
        try CorpusStore(path: db).db.execute("VACUUM INTO '\(target.replacingOccurrences(of: "'", with: "''"))'")
        let corpus = try CorpusStore(path: target)
        _ = try VectorStore(corpus: corpus)
        let st = try corpus.db.prepare("""
            SELECT DISTINCT d.key FROM documents d JOIN passages p ON p.doc_id = d.id
            WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.passage_id = p.id)
            """)
        var keys: [String] = []
        while try st.step() { keys.append(st.string(0) ?? "") }
        // Documents without any passage cannot be found by any mode; they stay.
        try corpus.db.transaction { _ = try corpus.delete(keys: keys) }
        return target
    }
}
