import Evaluation
import Foundation
import Ingest
import Tensor
import VectorIndex

/// The corpus `selfspec eval --rag-qa FILE --build-corpus` builds for `eval --rag-qa`: the items' own abstracts
/// plus real distractor articles, ingested, embedded and indexed like any corpus, so `ask` and
/// the evaluation search it as users search theirs.
///
/// - Item documents: one per PubMedQA record, key and PMID its PMID, its `CONTEXTS` as sections
///   named by `LABELS` (BACKGROUND, METHODS, …; "text" when the file has none), then its
///   `LONG_ANSWER` as a "conclusions" section: the whole abstract, as a user's PubMed corpus holds
///   it. PubMedQA's CONTEXTS are the abstract without its conclusion (its "reasoning-required"
///   setting); `conclusions: false` builds that instead. PubMedQA gives no title, and none is made
///   up (the question is often the article's title: it would give the answer away to retrieval).
/// - Distractors: every article of the distractor files that has an abstract and is not an item,
///   shuffled with a generator seeded by `seed` (SplitMix64), the first `count` kept.
/// - Then ``Ingester/ingest(documents:)`` (the ingest chunker), `VectorStore.embedPending` and the
///   HNSW graph (`DenseIndex.load`), the steps of `selfspec ingest` + `embed`.
public enum RAGQACorpus {
    public struct Report: Codable, Sendable {
        public var items: Int
        /// Whether the item documents hold their conclusion (`LONG_ANSWER`): the whole abstract.
        public var conclusions: Bool
        /// Articles with an abstract found in the distractor files (items excluded), and kept.
        public var distractorCandidates: Int
        public var distractors: Int
        public var documents: Int
        public var passages: Int
        public var embedded: Int
        /// Passages still without a vector (an interrupted embedding: run the build again to finish).
        public var pending: Int
        public var seconds: Double
    }

    /// Where a build is: "read", "embed" or "index", with a count and a total (0: unknown).
    public typealias Progress = (_ step: String, _ done: Int, _ total: Int) -> Void

    /// The document of one item.
    /// - Parameter conclusions: add `LONG_ANSWER` (the abstract's conclusion) as a last "conclusions" section.
    public static func document(_ r: PubMedQARecord, file: String, line: Int, conclusions: Bool = true) -> Document {
        var d = Document(key: r.pmid, source: .pubmed, pmid: Int(r.pmid), title: "", text: "", file: file, line: line)
        let names = r.sectionLabels.count == r.contexts.count ? r.sectionLabels : r.contexts.map { _ in "text" }
        var sections = zip(names, r.contexts).map { (name: $0.0.lowercased(), text: $0.1) }
        if conclusions, let conclusion = r.longAnswer, !conclusion.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            sections.append((name: "conclusions", text: conclusion))
        }
        d.setSections(sections)
        return d
    }

    /// `count` articles with an abstract from `paths`, none of them an item, in a seeded random choice.
    /// - Throws: `IngestError` for unreadable files; ``BenchmarkError/tooFewDistractors(files:found:wanted:)``.
    public static func distractors(paths: [String], excluding items: Set<Int>, count: Int, seed: UInt64,
                                   progress: Progress = { _, _, _ in }) throws -> (documents: [Document], candidates: Int) {
        var pool: [Document] = []
        for file in try Ingester.expand(paths) {
            try file.format.reader.read(file: file.path) { item in
                guard case let .document(d) = item, !d.text.isEmpty, !items.contains(d.pmid ?? -1) else { return }
                pool.append(d)
                if pool.count % 1000 == 0 { progress("read", pool.count, 0) }
            }
        }
        // The latest version of a PMID wins, as in ingest; sorted so the choice depends on the seed only.
        var byKey: [String: Document] = [:]
        for d in pool where (byKey[d.key]?.version ?? 0) <= d.version { byKey[d.key] = d }
        var unique = byKey.values.sorted { $0.key < $1.key }
        guard unique.count >= count else { throw BenchmarkError.tooFewDistractors(files: paths, found: unique.count, wanted: count) }
        var rng = SplitMix64(seed: seed)
        unique.shuffle(using: &rng)
        return (Array(unique.prefix(count)), byKey.count)
    }

    /// Builds (or adds to) the corpus `db`: the records' documents, `count` distractors, embedded
    /// and indexed when `embedder` is given (BM25 only otherwise).
    public static func build(records: [PubMedQARecord], itemsFile: String, distractorPaths: [String], count: Int,
                             seed: UInt64, db: String, embedder: (() throws -> any Embedder)?, conclusions: Bool = true,
                             shouldStop: @escaping () -> Bool = { false }, progress: @escaping Progress = { _, _, _ in }) throws -> Report {
        let start = Date()
        let items = records.enumerated().map { document($0.element, file: itemsFile, line: $0.offset + 1, conclusions: conclusions) }
        let chosen = try distractors(paths: distractorPaths, excluding: Set(items.compactMap(\.pmid)), count: count, seed: seed,
                                     progress: progress)
        let store = try CorpusStore(path: db)
        let ingest = try Ingester(store: store).ingest(documents: items + chosen.documents)
        var embedded = 0, pending = 0
        if let embedder {
            let vectors = try VectorStore(corpus: store)
            let e = try embedder()
            try vectors.checkCompatible(modelID: e.modelID, dimension: e.dimension)
            let run = try vectors.embedPending(with: e) { done, planned in
                progress("embed", done, planned)
                return shouldStop() ? .stop : .more
            }
            embedded = run.embedded
            if !run.stopped { _ = try DenseIndex.load(vectors, kind: .hnsw) { progress("index", $0, $1) } }
            pending = try vectors.pendingCount()
        }
        return Report(items: items.count, conclusions: conclusions, distractorCandidates: chosen.candidates, distractors: chosen.documents.count,
                      documents: try store.db.scalarInt("SELECT count(*) FROM documents"),
                      passages: ingest.passages, embedded: embedded, pending: pending, seconds: Date().timeIntervalSince(start))
    }
}
