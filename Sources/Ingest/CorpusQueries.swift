/// Read-side queries over a ``CorpusStore``: statistics, one document, BM25 passage search.

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

/// One BM25 hit: a passage and its document.
public struct PassageHit: Sendable, Codable, Equatable {
    public var passageID: Int
    public var documentKey: String
    public var pmid: Int?
    public var title: String
    public var section: String
    public var text: String
    /// BM25 score (higher is better; SQLite's `bm25()` negated).
    public var score: Double
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
    public func searchBM25(_ query: String, limit: Int = 10) throws -> [PassageHit] {
        let match = CorpusStore.ftsQuery(query)
        guard !match.isEmpty else { return [] }
        let st = try db.prepare("""
        WITH top AS (SELECT rowid AS id, -bm25(passages_fts) AS score FROM passages_fts
                     WHERE passages_fts MATCH ? ORDER BY bm25(passages_fts) LIMIT ?)
        SELECT t.id, p.key, p.pmid, p.title, p.section, p.text, t.score
        FROM top t JOIN passage_texts p ON p.id = t.id ORDER BY t.score DESC
        """)
        try st.bind([.text(match), .int(limit)])
        var hits: [PassageHit] = []
        while try st.step() {
            hits.append(PassageHit(passageID: st.int(0), documentKey: st.string(1) ?? "", pmid: st.isNull(2) ? nil : st.int(2),
                                   title: st.string(3) ?? "", section: st.string(4) ?? "", text: st.string(5) ?? "", score: st.double(6)))
        }
        return hits
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

import Foundation
