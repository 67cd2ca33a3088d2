import Foundation
import Ingest

/// How ``Retriever`` ranks passages.
public enum SearchMode: String, Sendable, Codable, CaseIterable {
    /// Cosine similarity of MiniLM embeddings (HNSW, or exact search with `exact: true`).
    case dense
    /// BM25 over passage titles and text (SQLite FTS5).
    case bm25
    /// Reciprocal rank fusion (k = 60) of the dense and BM25 rankings.
    case hybrid
}

/// One ranked passage with its provenance.
public struct SearchHit: Sendable, Codable, Equatable {
    public var rank: Int
    /// Mode-specific: cosine for dense, BM25 for bm25, fused RRF score for hybrid.
    public var score: Double
    public var passageID: Int64
    public var documentKey: String
    public var pmid: Int?
    public var title: String
    public var section: String
    public var text: String
    public var year: Int?
    public var journal: String?
}

extension SearchHit {
    /// The hit ranked `rank` (from 1) for a passage of the corpus.
    init(rank: Int, _ p: PassageHit) {
        self.init(rank: rank, score: p.score, passageID: Int64(p.passageID), documentKey: p.documentKey, pmid: p.pmid,
                  title: p.title, section: p.section, text: p.text, year: p.year, journal: p.journal)
    }
}

/// Whether ``Retriever/open(db:embedder:dense:index:efSearch:)`` prepares dense (and hybrid) search.
public enum DenseSearch: Sendable {
    /// BM25 only; no embedder is made.
    case off
    /// Dense and hybrid when the corpus has vectors, BM25 only when it has none.
    case ifEmbedded
    /// Dense and hybrid; a corpus without vectors is an error.
    case required
}

/// Searches a corpus by dense vectors, BM25 or both, with filters; the library API behind
/// `selfspec search`, `ask`, `serve`, the generator's grounding step and the retrieval benchmarks,
/// which all open it with ``open(db:embedder:dense:index:efSearch:)``.
public final class Retriever: @unchecked Sendable {
    /// Reciprocal rank fusion constant.
    public static let rrfK = 60.0

    /// Weights of the dense and the BM25 ranking in hybrid fusion (score = Σ wᵢ / (60 + rankᵢ));
    /// the default (1, 1) is plain reciprocal rank fusion.
    public var fusionWeights: (dense: Double, bm25: Double) = (1, 1)

    public let vectors: VectorStore
    public let embedder: (any Embedder)?
    private let index: (any VectorSearchIndex)?
    var corpus: CorpusStore { vectors.corpus }

    /// - Parameters:
    ///   - vectors: the corpus' vector store.
    ///   - embedder: embeds queries; nil allows BM25 only.
    ///   - index: the loaded dense index (see ``DenseIndex``); nil allows BM25 only.
    public init(vectors: VectorStore, embedder: (any Embedder)?, index: (any VectorSearchIndex)?) {
        self.vectors = vectors
        self.embedder = embedder
        self.index = index
    }

    /// Opens the corpus at `db` read-only for search: two readers and one writer can use the
    /// file at once (WAL), and a stale HNSW graph is brought up to date in memory, never saved
    /// (`selfspec embed` saves it).
    /// - Parameters:
    ///   - db: the corpus file; it must exist.
    ///   - embedder: makes the query embedder; called only when dense search is prepared.
    ///   - dense: whether to prepare dense search.
    ///   - kind: the dense index: the saved HNSW graph, or an exact scan.
    ///   - efSearch: the HNSW search breadth.
    /// - Throws: ``RetrievalError/noCorpus(db:)``; with `dense: .required`,
    ///   ``RetrievalError/notEmbedded(db:)`` for a corpus without vectors; when dense search is
    ///   prepared, ``RetrievalError/modelMismatch(stored:storedDimension:requested:requestedDimension:)``,
    ///   the embedder's errors and ``DenseIndex/load(_:kind:efSearch:progress:)``'s.
    public static func open(db: String, embedder: () throws -> any Embedder, dense: DenseSearch = .ifEmbedded,
                            index kind: DenseIndex.Kind = .hnsw, efSearch: Int = 64) throws -> Retriever {
        guard FileManager.default.fileExists(atPath: db) else { throw RetrievalError.noCorpus(db: db) }
        let store = try VectorStore(corpus: CorpusStore(path: db, readOnly: true))
        let embedded = try store.count() > 0
        if dense == .required && !embedded { throw RetrievalError.notEmbedded(db: db) }
        guard dense != .off && embedded else { return Retriever(vectors: store, embedder: nil, index: nil) }
        let e = try embedder()
        try store.checkCompatible(modelID: e.modelID, dimension: e.dimension)
        return Retriever(vectors: store, embedder: e, index: try DenseIndex.load(store, kind: kind, efSearch: efSearch)?.index)
    }

    /// The mode for a search that names none: hybrid when dense search is ready, else BM25.
    public var defaultMode: SearchMode { embedder != nil && index != nil ? .hybrid : .bm25 }

    /// The `k` best passages for `query`.
    /// - Throws: ``RetrievalError`` (not embedded, model mismatch, bad filter), SQLite errors.
    public func search(_ query: String, k: Int = 10, mode: SearchMode = .hybrid, filter: SearchFilter = .init()) throws -> [SearchHit] {
        if let y = filter.years, y.lowerBound > y.upperBound { throw RetrievalError.badFilter("year range \(y) is empty") }
        let depth = max(k * 5, 50)
        let ranked: [(id: Int64, score: Double)]
        switch mode {
        case .bm25:
            ranked = try corpus.rankBM25(query, limit: k, filter: filter)
        case .dense:
            ranked = try dense(query, limit: k, filter: filter)
        case .hybrid:
            let d = try dense(query, limit: depth, filter: filter)
            let b = try corpus.rankBM25(query, limit: depth, filter: filter)
            ranked = Array(Retriever.fuse([d.map(\.id), b.map(\.id)], weights: [fusionWeights.dense, fusionWeights.bm25]).prefix(k))
        }
        return try corpus.passages(ranked: ranked).enumerated().map { SearchHit(rank: $0.offset + 1, $0.element) }
    }

    /// The whole documents of `hits`: for each hit, best first, every passage of its document in
    /// document order (a document once, with the rank and score of its best hit), so a passage
    /// retrieved from an abstract's methods comes with the abstract's results and conclusion.
    /// - Throws: SQLite errors.
    public func wholeDocuments(_ hits: [SearchHit]) throws -> [SearchHit] {
        var seen = Set<String>(), out: [SearchHit] = []
        for hit in hits where seen.insert(hit.documentKey).inserted {
            let passages = try corpus.documentPassages(containing: hit.passageID, score: hit.score)
            out += passages.isEmpty ? [hit] : passages.map { SearchHit(rank: hit.rank, $0) }
        }
        return out
    }

    /// Reciprocal rank fusion: score(id) = Σ w / (60 + rank), ranks from 1; ties by smaller id.
    /// - Parameters:
    ///   - rankings: ranked id lists, best first.
    ///   - weights: one weight per list; `nil` weighs every list 1.
    public static func fuse(_ rankings: [[Int64]], weights: [Double]? = nil) -> [(id: Int64, score: Double)] {
        var scores: [Int64: Double] = [:]
        for (l, list) in rankings.enumerated() {
            let w = weights.map { $0[l] } ?? 1
            for (i, id) in list.enumerated() { scores[id, default: 0] += w / (rrfK + Double(i + 1)) }
        }
        return scores.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    // MARK: Modes

    func dense(_ query: String, limit: Int, filter: SearchFilter) throws -> [(id: Int64, score: Double)] {
        guard let index, index.count > 0, let embedder else {
            throw RetrievalError.notEmbedded(db: corpus.db.path)
        }
        try vectors.checkCompatible(modelID: embedder.modelID, dimension: embedder.dimension)
        let q = try embedder.embed(query)
        var admit: IDFilter? = nil
        if !filter.isEmpty {
            let allowed = try corpus.passageIDs(matching: filter)
            admit = { allowed.contains($0) }
        }
        return try index.search(query: q, k: limit, filter: admit).map { ($0.id, Double($0.score)) }
    }
}
