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

/// Restrictions applied in every search mode.
public struct SearchFilter: Sendable, Equatable {
    /// Publication years, inclusive.
    public var years: ClosedRange<Int>?
    /// Journal title or ISO abbreviation, exact (case-insensitive).
    public var journal: String?
    /// A MeSH descriptor name, exact (case-insensitive).
    public var mesh: String?

    public init(years: ClosedRange<Int>? = nil, journal: String? = nil, mesh: String? = nil) {
        self.years = years; self.journal = journal; self.mesh = mesh
    }

    public var isEmpty: Bool { years == nil && journal == nil && mesh == nil }

    /// SQL conditions over `documents d` and their bound values.
    var sql: (clause: String, values: [SQLValue]) {
        var parts: [String] = [], values: [SQLValue] = []
        if let y = years { parts.append("d.year BETWEEN ? AND ?"); values += [.int(y.lowerBound), .int(y.upperBound)] }
        if let j = journal { parts.append("(d.journal = ? COLLATE NOCASE OR d.journal_abbrev = ? COLLATE NOCASE)"); values += [.text(j), .text(j)] }
        if let m = mesh { parts.append("EXISTS (SELECT 1 FROM mesh_terms m WHERE m.doc_id = d.id AND m.descriptor = ? COLLATE NOCASE)"); values.append(.text(m)) }
        return (parts.isEmpty ? "1" : parts.joined(separator: " AND "), values)
    }
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

/// Searches a corpus by dense vectors, BM25 or both, with filters; the library API behind
/// `selfspec search` and the generator's grounding step.
public final class Retriever: @unchecked Sendable {
    /// Reciprocal rank fusion constant.
    public static let rrfK = 60.0

    /// Weights of the dense and the BM25 ranking in hybrid fusion (score = Σ wᵢ / (60 + rankᵢ));
    /// the default (1, 1) is plain reciprocal rank fusion.
    public var fusionWeights: (dense: Double, bm25: Double) = (1, 1)

    public let vectors: VectorStore
    public let embedder: (any Embedder)?
    private let index: (any VectorSearchIndex)?
    var db: Database { vectors.corpus.db }

    /// - Parameters:
    ///   - vectors: the corpus' vector store.
    ///   - embedder: embeds queries; nil allows BM25 only.
    ///   - index: the loaded dense index (see ``DenseIndexLoader``); nil allows BM25 only.
    public init(vectors: VectorStore, embedder: (any Embedder)?, index: (any VectorSearchIndex)?) {
        self.vectors = vectors
        self.embedder = embedder
        self.index = index
    }

    /// The `k` best passages for `query`.
    /// - Throws: ``RetrievalError`` (not embedded, model mismatch, bad filter), SQLite errors.
    public func search(_ query: String, k: Int = 10, mode: SearchMode = .hybrid, filter: SearchFilter = .init()) throws -> [SearchHit] {
        if let y = filter.years, y.lowerBound > y.upperBound { throw RetrievalError.badFilter("year range \(y) is empty") }
        let depth = max(k * 5, 50)
        let ranked: [(id: Int64, score: Double)]
        switch mode {
        case .bm25:
            ranked = try bm25(query, limit: k, filter: filter)
        case .dense:
            ranked = try dense(query, limit: k, filter: filter)
        case .hybrid:
            let d = try dense(query, limit: depth, filter: filter)
            let b = try bm25(query, limit: depth, filter: filter)
            ranked = Array(Retriever.fuse([d.map(\.id), b.map(\.id)], weights: [fusionWeights.dense, fusionWeights.bm25]).prefix(k))
        }
        return try hydrate(ranked)
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

    func bm25(_ query: String, limit: Int, filter: SearchFilter) throws -> [(id: Int64, score: Double)] {
        let match = CorpusStore.ftsQuery(query)
        guard !match.isEmpty else { return [] }
        let f = filter.sql
        let st = try db.prepare(filter.isEmpty ? """
            SELECT rowid, -bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ? ORDER BY bm25(passages_fts) LIMIT ?
            """ : """
            SELECT f.rowid, -bm25(passages_fts) FROM passages_fts f
            JOIN passages p ON p.id = f.rowid JOIN documents d ON d.id = p.doc_id
            WHERE passages_fts MATCH ? AND \(f.clause) ORDER BY bm25(passages_fts) LIMIT ?
            """)
        try st.bind([.text(match)] + f.values + [.int(limit)])
        var out: [(Int64, Double)] = []
        while try st.step() { out.append((Int64(st.int(0)), st.double(1))) }
        return out
    }

    func dense(_ query: String, limit: Int, filter: SearchFilter) throws -> [(id: Int64, score: Double)] {
        guard let index, index.count > 0, let embedder else {
            throw RetrievalError.notEmbedded(db: db.path)
        }
        try vectors.checkCompatible(modelID: embedder.modelID, dimension: embedder.dimension)
        let q = try embedder.embed(query)
        var admit: IDFilter? = nil
        if !filter.isEmpty {
            let allowed = try admittedPassages(filter)
            admit = { allowed.contains($0) }
        }
        return try index.search(query: q, k: limit, filter: admit).map { ($0.id, Double($0.score)) }
    }

    /// Passage ids whose documents pass `filter`.
    func admittedPassages(_ filter: SearchFilter) throws -> Set<Int64> {
        let f = filter.sql
        let st = try db.prepare("SELECT p.id FROM passages p JOIN documents d ON d.id = p.doc_id WHERE \(f.clause)")
        try st.bind(f.values)
        var out = Set<Int64>()
        while try st.step() { out.insert(Int64(st.int(0))) }
        return out
    }

    /// Joins ranked ids with their passages; ids whose passage is gone are dropped.
    func hydrate(_ ranked: [(id: Int64, score: Double)]) throws -> [SearchHit] {
        let st = try db.prepare("""
        SELECT t.key, t.pmid, t.title, t.section, t.text, d.year, coalesce(d.journal_abbrev, d.journal)
        FROM passage_texts t JOIN documents d ON d.id = t.doc_id WHERE t.id = ?
        """)
        var hits: [SearchHit] = []
        for (id, score) in ranked {
            try st.bind([.int(Int(id))])
            if try st.step() {
                hits.append(SearchHit(rank: hits.count + 1, score: score, passageID: id, documentKey: st.string(0) ?? "",
                                      pmid: st.isNull(1) ? nil : st.int(1), title: st.string(2) ?? "", section: st.string(3) ?? "",
                                      text: st.string(4) ?? "", year: st.isNull(5) ? nil : st.int(5), journal: st.string(6)))
            }
            st.reset()
        }
        return hits
    }
}
