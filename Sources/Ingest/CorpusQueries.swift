import Foundation
import SQLiteDB

// Read-side queries over a ``CorpusStore``: statistics, one document, BM25 passage search, and
// the passage lookups the vector index makes (it runs no SQL on these tables itself).

/// Corpus statistics for `selfspec stats`.
public struct CorpusStats: Sendable, Codable {
    public struct Count: Sendable, Codable { public var name: String; public var count: Int }
    public var documents = 0
    public var passages = 0
    public var documentsWithoutPassages = 0
    public var meshTerms = 0
    public var files = 0
    public var bySource: [Count] = []
    /// Documents per publication year, oldest first (documents without a year are not listed).
    public var years: [Count] = []
    public var topJournals: [Count] = []
    public var topMesh: [Count] = []
    public var schemaVersion = 0
}

/// A stored document with its MeSH headings and passages, for `selfspec show`.
public struct StoredDocument: Sendable {
    public var id: Int
    public var document: Document
    public var passages: [(id: Int, passage: Passage)]
}

/// One ranked passage with its document's provenance.
public struct PassageHit: Sendable, Codable, Equatable {
    public var passageID: Int
    public var documentKey: String
    public var pmid: Int?
    public var title: String
    public var section: String
    public var text: String
    /// The ranking's score (for ``CorpusStore/searchBM25(_:limit:filter:)``: BM25, higher is
    /// better, SQLite's `bm25()` negated).
    public var score: Double
    public var year: Int?
    /// The journal's ISO abbreviation, else its title.
    public var journal: String?
}

/// Restrictions on the documents whose passages a search may return.
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

extension CorpusStore {
    /// Counts and top lists; `top` bounds each list.
    public func stats(top: Int = 10) throws -> CorpusStats {
        var s = CorpusStats()
        s.documents = try db.scalarInt("SELECT count(*) FROM documents")
        s.passages = try db.scalarInt("SELECT count(*) FROM passages")
        s.documentsWithoutPassages = try db.scalarInt("SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.doc_id = d.id)")
        s.meshTerms = try db.scalarInt("SELECT count(*) FROM mesh_terms")
        s.files = try db.scalarInt("SELECT count(*) FROM ingested_files")
        s.schemaVersion = try db.scalarInt("PRAGMA user_version")
        func counts(_ sql: String) throws -> [CorpusStats.Count] {
            let st = try db.prepare(sql)
            try st.bind([.int(top)])
            var out: [CorpusStats.Count] = []
            while try st.step() { out.append(.init(name: st.string(0) ?? "", count: st.int(1))) }
            return out
        }
        s.bySource = try counts("SELECT source, count(*) FROM documents GROUP BY source ORDER BY 2 DESC LIMIT ?")
        s.years = try counts("SELECT year, count(*) FROM documents WHERE year IS NOT NULL GROUP BY year ORDER BY year DESC LIMIT ?").reversed()
        s.topJournals = try counts("SELECT coalesce(journal_abbrev, journal), count(*) FROM documents WHERE journal IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?")
        s.topMesh = try counts("SELECT descriptor, count(*) FROM mesh_terms GROUP BY descriptor ORDER BY 2 DESC, 1 LIMIT ?")
        return s
    }

    /// The document stored under `key` (a PMID, JSONL id, PMC id or file name), or nil.
    public func document(key: String) throws -> StoredDocument? {
        let st = try db.prepare("""
        SELECT id, key, source, pmid, version, title, text, sections, journal, journal_abbrev, year, language,
               publication_types, keywords, doi, pmcid, file, line FROM documents WHERE key = ?
        """)
        try st.bind([.text(key)])
        guard try st.step() else { return nil }
        let id = st.int(0)
        var d = Document(key: st.string(1) ?? key, source: DocumentSource(rawValue: st.string(2) ?? "") ?? .text,
                         pmid: st.isNull(3) ? nil : st.int(3), version: st.int(4), title: st.string(5) ?? "",
                         text: st.string(6) ?? "", journal: st.string(8), journalAbbrev: st.string(9),
                         year: st.isNull(10) ? nil : st.int(10), language: st.string(11),
                         publicationTypes: JSONArray.strings(st.string(12) ?? "[]"), keywords: JSONArray.strings(st.string(13) ?? "[]"),
                         doi: st.string(14), pmcid: st.string(15), file: st.string(16) ?? "", line: st.int(17))
        d.sections = JSONArray.sections(st.string(7) ?? "[]")
        let m = try db.prepare("SELECT descriptor, ui, major, qualifiers FROM mesh_terms WHERE doc_id = ? ORDER BY rowid")
        try m.bind([.int(id)])
        while try m.step() {
            d.mesh.append(MeshHeading(descriptor: m.string(0) ?? "", ui: m.string(1) ?? "", majorTopic: m.int(2) != 0,
                                      qualifiers: JSONArray.strings(m.string(3) ?? "[]")))
        }
        let p = try db.prepare("SELECT id, ordinal, section, start, end, text FROM passage_texts WHERE doc_id = ? ORDER BY ordinal")
        try p.bind([.int(id)])
        var passages: [(Int, Passage)] = []
        while try p.step() {
            passages.append((p.int(0), Passage(ordinal: p.int(1), section: p.string(2) ?? "", start: p.int(3), end: p.int(4), text: p.string(5) ?? "")))
        }
        return StoredDocument(id: id, document: d, passages: passages)
    }

    /// BM25 search over passage titles and text with SQLite FTS5. Query words are OR-ed, so a
    /// natural-language question works; BM25 ranks passages matching more and rarer words first.
    public func searchBM25(_ query: String, limit: Int = 10, filter: SearchFilter = .init()) throws -> [PassageHit] {
        try passages(ranked: rankBM25(query, limit: limit, filter: filter))
    }

    /// The ids and BM25 scores of the `limit` best passages for `query` (see ``searchBM25(_:limit:filter:)``),
    /// best first.
    public func rankBM25(_ query: String, limit: Int, filter: SearchFilter = .init()) throws -> [(id: Int64, score: Double)] {
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

    /// The passages of a ranking with their documents, in its order; ids whose passage is gone are dropped.
    public func passages(ranked: [(id: Int64, score: Double)]) throws -> [PassageHit] {
        let st = try db.prepare("""
        SELECT t.key, t.pmid, t.title, t.section, t.text, d.year, coalesce(d.journal_abbrev, d.journal)
        FROM passage_texts t JOIN documents d ON d.id = t.doc_id WHERE t.id = ?
        """)
        var hits: [PassageHit] = []
        for (id, score) in ranked {
            try st.bind([.int(Int(id))])
            if try st.step() {
                hits.append(PassageHit(passageID: Int(id), documentKey: st.string(0) ?? "", pmid: st.isNull(1) ? nil : st.int(1),
                                       title: st.string(2) ?? "", section: st.string(3) ?? "", text: st.string(4) ?? "", score: score,
                                       year: st.isNull(5) ? nil : st.int(5), journal: st.string(6)))
            }
            st.reset()
        }
        return hits
    }

    /// Every passage of the document that holds passage `id`, in document order, each with `score`;
    /// empty when the passage is gone.
    public func documentPassages(containing id: Int64, score: Double = 0) throws -> [PassageHit] {
        let st = try db.prepare("""
        SELECT t.id, t.key, t.pmid, t.title, t.section, t.text, d.year, coalesce(d.journal_abbrev, d.journal)
        FROM passage_texts t JOIN documents d ON d.id = t.doc_id
        WHERE t.doc_id = (SELECT doc_id FROM passages WHERE id = ?) ORDER BY t.ordinal
        """)
        try st.bind([.int(Int(id))])
        var hits: [PassageHit] = []
        while try st.step() {
            hits.append(PassageHit(passageID: st.int(0), documentKey: st.string(1) ?? "", pmid: st.isNull(2) ? nil : st.int(2),
                                   title: st.string(3) ?? "", section: st.string(4) ?? "", text: st.string(5) ?? "", score: score,
                                   year: st.isNull(6) ? nil : st.int(6), journal: st.string(7)))
        }
        return hits
    }

    /// The ids of the passages whose documents pass `filter`.
    public func passageIDs(matching filter: SearchFilter) throws -> Set<Int64> {
        let f = filter.sql
        let st = try db.prepare("SELECT p.id FROM passages p JOIN documents d ON d.id = p.doc_id WHERE \(f.clause)")
        try st.bind(f.values)
        var out = Set<Int64>()
        while try st.step() { out.insert(Int64(st.int(0))) }
        return out
    }

    /// Up to `limit` document keys whose row id is above `id`, ascending by row id (to walk the
    /// whole corpus in pages: pass the last id back).
    public func documentKeys(after id: Int, limit: Int) throws -> [(id: Int, key: String)] {
        let st = try db.prepare("SELECT id, key FROM documents WHERE id > ? ORDER BY id LIMIT ?")
        try st.bind([.int(id), .int(limit)])
        var out: [(Int, String)] = []
        while try st.step() { out.append((st.int(0), st.string(1) ?? "")) }
        return out
    }

    /// The number of documents.
    public func documentCount() throws -> Int { try db.scalarInt("SELECT count(*) FROM documents") }

    /// The number of passages.
    public func passageCount() throws -> Int { try db.scalarInt("SELECT count(*) FROM passages") }

    /// Up to `limit` passage ids above `id`, ascending.
    public func passageIDs(after id: Int64, limit: Int) throws -> [Int64] {
        let st = try db.prepare("SELECT id FROM passages WHERE id > ? ORDER BY id LIMIT ?")
        try st.bind([.int(Int(id)), .int(limit)])
        var out: [Int64] = []
        while try st.step() { out.append(Int64(st.int(0))) }
        return out
    }

    /// The text and document title of each passage in `ids` that exists, in the order of `ids`.
    public func passageTexts(ids: [Int64]) throws -> [(id: Int64, title: String, text: String)] {
        let st = try db.prepare("SELECT title, text FROM passage_texts WHERE id = ?")
        var out: [(Int64, String, String)] = []
        for id in ids {
            defer { st.reset() }
            try st.bind([.int(Int(id))])
            if try st.step() { out.append((id, st.string(0) ?? "", st.string(1) ?? "")) }
        }
        return out
    }

    /// Turns free text into an FTS5 query: alphanumeric words, quoted, joined with OR.
    public static func ftsQuery(_ text: String) -> String {
        var words: [String] = []
        var current = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber { current.append(ch) }
            else if !current.isEmpty { words.append(current); current = "" }
        }
        if !current.isEmpty { words.append(current) }
        var seen = Set<String>()
        return words.filter { seen.insert($0).inserted }.prefix(64).map { "\"\($0)\"" }.joined(separator: " OR ")
    }
}

/// Reading back the small JSON arrays the store writes.
enum JSONArray {
    static func strings(_ s: String) -> [String] {
        guard let data = s.data(using: .utf8), let v = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return v
    }
    static func sections(_ s: String) -> [Section] {
        guard let data = s.data(using: .utf8), let v = try? JSONSerialization.jsonObject(with: data) as? [[Any]] else { return [] }
        return v.compactMap { row in
            guard row.count == 3, let name = row[0] as? String, let a = row[1] as? Int, let b = row[2] as? Int else { return nil }
            return Section(name: name, start: a, end: b)
        }
    }
}

