import ArgumentParser
import Foundation
import Ingest
import SQLiteDB
import VectorIndex

// MARK: - pubmedqa

/// Retrieval quality on PubMedQA (pqal): each question should retrieve its own abstract (the
/// corpus holds the 500 abstracts as JSONL documents keyed by PMID, among real distractors).
struct BenchPubMedQA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubmedqa",
        abstract: "Recall@1, recall@k and MRR@k of each PubMedQA question's own PMID, for bm25, dense and hybrid search.",
        discussion: """
        The corpus must contain the questions' abstracts (see Benchmarks/retrieval.sh). With \
        --embedded-only the evaluation runs on a temporary copy without the documents that still \
        have unembedded passages, so all three modes search the same documents.
        """)

    @Option(help: "The corpus SQLite file.") var db: String
    @Option(help: "pqal JSON: {PMID: {QUESTION: ...}}.") var questions: String
    @Option(help: "Cut-off of recall@k and MRR@k.") var k = 10
    @Option(help: "all, even or odd: the questions whose PMID has that parity (tune on one, report the other).") var split = "all"
    @Option(help: "Weight of the dense ranking in hybrid fusion (BM25 weight 1).") var denseWeight = 1.0
    @Flag(help: "Evaluate on a copy holding only fully embedded documents.") var embeddedOnly = false
    @Flag(help: "Dense search by exact scan instead of HNSW.") var exact = false
    @OptionGroup var model: ModelOptions
    @Flag(help: "Print JSON.") var json = false

    struct Scores: Encodable { var mode: String; var recallAt1: Double; var recallAtK: Double; var mrr: Double }
    struct Result: Encodable {
        var questions: Int; var documents: Int; var passages: Int; var k: Int; var split: String; var denseWeight: Double; var scores: [Scores]
    }

    func validate() throws {
        if !["all", "even", "odd"].contains(split) { throw ValidationError("--split must be all, even or odd") }
        if k < 1 { throw ValidationError("--k must be positive") }
    }

    func run() throws {
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: questions)))
        guard let entries = raw as? [String: [String: Any]] else { throw ValidationError("\(questions): expected an object of PMID → {QUESTION, …}") }
        var items: [(pmid: Int, question: String)] = entries.compactMap { key, value in
            guard let pmid = Int(key), let q = value["QUESTION"] as? String else { return nil }
            return (pmid, q)
        }.sorted { $0.pmid < $1.pmid }
        if split != "all" { items = items.filter { ($0.pmid % 2 == 0) == (split == "even") } }

        var path = db
        if embeddedOnly { path = try Self.embeddedCopy(of: db) }
        defer { if embeddedOnly { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } } }
        let retriever = try Retriever.open(db: path, embedder: model.load, dense: .required, index: exact ? .exact : .hnsw)
        let store = retriever.vectors
        retriever.fusionWeights = (denseWeight, 1)
        let present = try Set(Self.column(store.corpus.db, "SELECT pmid FROM documents WHERE pmid IS NOT NULL"))
        let missing = items.filter { !present.contains($0.pmid) }.count
        if missing > 0 { throw ValidationError("\(missing) of \(items.count) question PMIDs are not in \(db); ingest the pqal JSONL first") }

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
            scores.append(Scores(mode: mode.rawValue, recallAt1: BenchIO.round(Double(r1) / n, 10000),
                                 recallAtK: BenchIO.round(Double(rk) / n, 10000), mrr: BenchIO.round(rr / n, 10000)))
        }
        let result = Result(questions: items.count, documents: try store.corpus.db.scalarInt("SELECT count(*) FROM documents"),
                            passages: try store.corpus.db.scalarInt("SELECT count(*) FROM passages"), k: k, split: split,
                            denseWeight: denseWeight, scores: scores)
        if json { try Terminal.printJSON(result); return }
        print("PubMedQA \(split): \(result.questions) questions over \(result.documents) documents / \(result.passages) passages, dense weight \(denseWeight)")
        print("| mode | recall@1 | recall@\(k) | MRR@\(k) |\n|---|---|---|---|")
        for s in scores { print("| \(s.mode) | \(s.recallAt1) | \(s.recallAtK) | \(s.mrr) |") }
    }

    static func column(_ db: Database, _ sql: String) throws -> [Int] {
        let st = try db.prepare(sql)
        var out: [Int] = []
        while try st.step() { out.append(st.int(0)) }
        return out
    }

    /// A temporary copy of `db` without the documents that have an unembedded passage.
    static func embeddedCopy(of db: String) throws -> String {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("pubmedqa-\(getpid()).sqlite").path
        try? FileManager.default.removeItem(atPath: target)
        try openExisting(db).db.execute("VACUUM INTO '\(target.replacingOccurrences(of: "'", with: "''"))'")
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
