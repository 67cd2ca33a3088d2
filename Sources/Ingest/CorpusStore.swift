import Foundation
import SQLiteDB

/// The corpus in one SQLite file (WAL): documents, their MeSH terms, passages with provenance,
/// and an FTS5 index over passages for BM25.
///
/// Update semantics follow PubMed's update files: a document whose key is already stored
/// replaces it (an older `PMID/@Version` never replaces a newer one; an identical record is left
/// untouched so passage ids stay stable), and ``delete(keys:)`` removes documents with their
/// passages, MeSH terms and FTS rows. Writes are grouped in transactions by the caller
/// (``Database/transaction(_:)``), so a killed run leaves the last committed state.
public final class CorpusStore: @unchecked Sendable {
    /// The schema version this build writes. Migrations bring older files up to it.
    public static let schemaVersion = 1

    public let db: Database
    private lazy var findDoc = try? db.prepare("SELECT id, version, content_hash FROM documents WHERE key = ?")
    private var insertDocStmt: Statement?
    private var insertMeshStmt: Statement?
    private var insertPassageStmt: Statement?
    private var insertFTSStmt: Statement?
    private var deleteFTSStmt: Statement?
    private var deleteDocStmt: Statement?

    /// Opens or creates the corpus at `path`, migrating older schemas.
    /// - Throws: ``IngestError/schemaTooNew(file:found:supported:)`` for files from a newer SelfSpec.
    public init(path: String, readOnly: Bool = false) throws {
        db = try Database(path: path, readOnly: readOnly)
        try db.execute("PRAGMA foreign_keys = ON")
        if !readOnly {
            // 8 KiB pages (new files only) hold most abstracts without overflow pages; a 32 MiB
            // page cache and fewer WAL checkpoints keep bulk ingest from rewriting pages (FTS
            // segments, indexes) over and over; peak RSS stays well under 150 MB.
            // Switching a new file to WAL needs it alone, and SQLite does not wait for that lock
            // (no busy handler): another process opening the same new file retries for up to 10 s.
            var attempt = 0
            while true {
                do {
                    try db.execute("PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8192")
                    break
                } catch let e as SQLiteError where e.code == 5 && attempt < 200 {
                    attempt += 1
                    usleep(50_000)
                }
            }
            try migrate()
        } else {
            let v = try db.scalarInt("PRAGMA user_version")
            if v > CorpusStore.schemaVersion { throw IngestError.schemaTooNew(file: path, found: v, supported: CorpusStore.schemaVersion) }
        }
    }

    // MARK: Schema

    private func migrate() throws {
        // Read and upgrade the version under the write lock: two processes opening a new file at
        // once must not both create the tables.
        try db.transaction {
            let version = try db.scalarInt("PRAGMA user_version")
            if version > CorpusStore.schemaVersion {
                throw IngestError.schemaTooNew(file: db.path, found: version, supported: CorpusStore.schemaVersion)
            }
            if version < 1 { try createSchema() }
            // Added after version 1 (no data to convert): how far an unfinished file got.
            try db.execute("""
            CREATE TABLE IF NOT EXISTS file_progress(
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
                records INTEGER NOT NULL, documents INTEGER NOT NULL, deletions INTEGER NOT NULL
            )
            """)
        }
    }

    private func createSchema() throws {
        try db.execute("""
        CREATE TABLE documents(
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            pmid INTEGER,
            version INTEGER NOT NULL DEFAULT 1,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            sections TEXT NOT NULL,          -- JSON [[name, start, end], ...] (Unicode-scalar offsets)
            journal TEXT, journal_abbrev TEXT, year INTEGER, language TEXT,
            publication_types TEXT NOT NULL, -- JSON array of strings
            keywords TEXT NOT NULL,          -- JSON array of strings
            doi TEXT, pmcid TEXT,
            file TEXT NOT NULL, line INTEGER NOT NULL,
            content_hash INTEGER NOT NULL
        );
        CREATE INDEX documents_pmid ON documents(pmid);
        CREATE INDEX documents_year ON documents(year);
        CREATE INDEX documents_journal ON documents(journal);
        CREATE TABLE mesh_terms(
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            descriptor TEXT NOT NULL, ui TEXT NOT NULL, major INTEGER NOT NULL,
            qualifiers TEXT NOT NULL         -- JSON array of strings
        );
        CREATE INDEX mesh_terms_doc ON mesh_terms(doc_id);
        CREATE INDEX mesh_terms_descriptor ON mesh_terms(descriptor);
        -- A passage's text is documents.text[start:end] (Unicode code points, as SQLite's substr
        -- counts them), so it is not stored twice; the passage_texts view gives it.
        -- AUTOINCREMENT: a passage id is never reused, so vectors and ANN graphs keyed by it
        -- can never point at a different passage after a delete.
        CREATE TABLE passages(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            section TEXT NOT NULL,
            start INTEGER NOT NULL, end INTEGER NOT NULL,
            UNIQUE(doc_id, ordinal)
        );
        CREATE VIEW passage_texts AS
            SELECT p.id, p.doc_id, p.ordinal, p.section, p.start, p.end,
                   substr(d.text, p.start + 1, p.end - p.start) AS text, d.title, d.key, d.pmid
            FROM passages p JOIN documents d ON d.id = p.doc_id;
        -- Contentless: the text lives in passages/documents; rows are removed with the 'delete' command.
        CREATE VIRTUAL TABLE passages_fts USING fts5(title, text, content='', tokenize='porter unicode61 remove_diacritics 2');
        -- Keep a whole ingest transaction's terms in memory before writing a segment
        -- (default 1 MiB): fewer, larger segments mean less merging during bulk ingest.
        INSERT INTO passages_fts(passages_fts, rank) VALUES('hashsize', 16777216);
        CREATE TABLE ingested_files(
            path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
            documents INTEGER NOT NULL, deletions INTEGER NOT NULL, completed_at TEXT NOT NULL
        );
        PRAGMA user_version = 1;
        """)
    }

    // MARK: Writing

    /// What ``upsert(_:passages:)`` did with a document.
    public enum UpsertResult: Sendable, Equatable {
        case inserted, replaced, unchanged, olderVersionSkipped
    }

    /// Stores `document` with its `passages`, replacing a stored document with the same key.
    /// Call inside a transaction.
    @discardableResult
    public func upsert(_ document: Document, passages: [Passage]) throws -> UpsertResult {
        try upsert(document, passages: passages, row: Row(document))
    }

    /// The derived column values of a document (content hash, JSON arrays), computed apart from
    /// the write so the ingester can prepare them on its reader thread.
    struct Row: Sendable {
        var hash: Int
        var sections: String
        var publicationTypes: String
        var keywords: String
        var meshQualifiers: [String]

        init(_ d: Document) {
            hash = Int(bitPattern: UInt(d.contentHash))
            sections = JSON.array(d.sections.map { JSON.array([JSON.string($0.name), String($0.start), String($0.end)]) })
            publicationTypes = JSON.strings(d.publicationTypes)
            keywords = JSON.strings(d.keywords)
            meshQualifiers = d.mesh.map { JSON.strings($0.qualifiers) }
        }
    }

    @discardableResult
    func upsert(_ document: Document, passages: [Passage], row: Row) throws -> UpsertResult {
        let hash = row.hash
        var replacing = false
        if let find = findDoc {
            defer { find.reset() }
            try find.bind([.text(document.key)])
            if try find.step() {
                let id = find.int(0), version = find.int(1), stored = find.int(2)
                find.reset()
                if document.source == .pubmed && document.version < version { return .olderVersionSkipped }
                if stored == hash { return .unchanged }
                try deleteDocument(id: id)
                replacing = true
            }
        }
        try insert(document, row: row, passages: passages)
        return replacing ? .replaced : .inserted
    }

    /// Removes the documents with these keys; returns how many existed.
    @discardableResult
    public func delete(keys: [String]) throws -> Int {
        var removed = 0
        guard let find = findDoc else { return 0 }
        for key in keys {
            try find.bind([.text(key)])
            let id: Int? = try find.step() ? find.int(0) : nil
            find.reset()
            if let id { try deleteDocument(id: id); removed += 1 }
        }
        return removed
    }

    private func deleteDocument(id: Int) throws {
        if deleteFTSStmt == nil {
            deleteFTSStmt = try db.prepare("""
            INSERT INTO passages_fts(passages_fts, rowid, title, text)
            SELECT 'delete', id, title, text FROM passage_texts WHERE doc_id = ?
            """)
            deleteDocStmt = try db.prepare("DELETE FROM documents WHERE id = ?")
        }
        try deleteFTSStmt!.run([.int(id)])
        try deleteDocStmt!.run([.int(id)])
    }

    private func insert(_ d: Document, row: Row, passages: [Passage]) throws {
        if insertDocStmt == nil {
            insertDocStmt = try db.prepare("""
            INSERT INTO documents(key, source, pmid, version, title, text, sections, journal, journal_abbrev, year,
                language, publication_types, keywords, doi, pmcid, file, line, content_hash)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            """)
            insertMeshStmt = try db.prepare("INSERT INTO mesh_terms(doc_id, descriptor, ui, major, qualifiers) VALUES (?,?,?,?,?)")
            insertPassageStmt = try db.prepare("INSERT INTO passages(doc_id, ordinal, section, start, end) VALUES (?,?,?,?,?)")
            insertFTSStmt = try db.prepare("INSERT INTO passages_fts(rowid, title, text) VALUES (?,?,?)")
        }
        func opt(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
        func opt(_ i: Int?) -> SQLValue { i.map { .int($0) } ?? .null }
        try insertDocStmt!.run([
            .text(d.key), .text(d.source.rawValue), opt(d.pmid), .int(d.version), .text(d.title), .text(d.text),
            .text(row.sections), opt(d.journal), opt(d.journalAbbrev), opt(d.year), opt(d.language),
            .text(row.publicationTypes), .text(row.keywords), opt(d.doi), opt(d.pmcid),
            .text(d.file), .int(d.line), .int(row.hash),
        ])
        let docID = Int(db.lastInsertRowID)
        for (m, qualifiers) in zip(d.mesh, row.meshQualifiers) {
            try insertMeshStmt!.run([.int(docID), .text(m.descriptor), .text(m.ui), .int(m.majorTopic ? 1 : 0), .text(qualifiers)])
        }
        for p in passages {
            try insertPassageStmt!.run([.int(docID), .int(p.ordinal), .text(p.section), .int(p.start), .int(p.end)])
            try insertFTSStmt!.run([.int(Int(db.lastInsertRowID)), .text(d.title), .text(p.text)])
        }
    }

    // MARK: Files

    /// Whether `path` was fully ingested before with the same size and modification time.
    public func isIngested(path: String, size: Int, mtime: Int) throws -> Bool {
        try db.scalarInt("SELECT count(*) FROM ingested_files WHERE path = ? AND size = ? AND mtime = ?",
                         [.text(path), .int(size), .int(mtime)]) > 0
    }

    /// Records that `path` was fully ingested (and forgets its partial progress).
    public func markIngested(path: String, size: Int, mtime: Int, documents: Int, deletions: Int) throws {
        try db.prepare("INSERT OR REPLACE INTO ingested_files VALUES (?,?,?,?,?,datetime('now'))")
            .run([.text(path), .int(size), .int(mtime), .int(documents), .int(deletions)])
        try db.prepare("DELETE FROM file_progress WHERE path = ?").run([.text(path)])
    }

    /// How far an unfinished run got in a file: its first `records` records (documents and
    /// deletion lists, in file order) are committed.
    public struct FileProgress: Sendable, Equatable {
        public var records = 0, documents = 0, deletions = 0
        public init(records: Int = 0, documents: Int = 0, deletions: Int = 0) {
            self.records = records; self.documents = documents; self.deletions = deletions
        }
    }

    /// What an unfinished run committed from `path`, if the file is unchanged since (zeros otherwise):
    /// a resumed run skips those records instead of chunking and comparing them again.
    public func progress(path: String, size: Int, mtime: Int) throws -> FileProgress {
        let stmt = try db.prepare("SELECT records, documents, deletions FROM file_progress WHERE path = ? AND size = ? AND mtime = ?")
        try stmt.bind([.text(path), .int(size), .int(mtime)])
        guard try stmt.step() else { return FileProgress() }
        return FileProgress(records: stmt.int(0), documents: stmt.int(1), deletions: stmt.int(2))
    }

    /// Notes, inside the transaction that commits them, how far the records of `path` are stored.
    public func recordProgress(path: String, size: Int, mtime: Int, _ p: FileProgress) throws {
        try db.prepare("INSERT OR REPLACE INTO file_progress VALUES (?,?,?,?,?,?)")
            .run([.text(path), .int(size), .int(mtime), .int(p.records), .int(p.documents), .int(p.deletions)])
    }
}

// MARK: - Small helpers

extension Document {
    /// FNV-1a over every stored field: equal hashes mean the stored record is the same.
    var contentHash: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ s: String) {
            var s = s
            s.withUTF8 { buf in for b in buf { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
            h = (h ^ 0x1f) &* 0x100_0000_01b3
        }
        mix(key); mix(source.rawValue); mix(String(version)); mix(title); mix(text)
        for s in sections { mix(s.name); mix(String(s.start)) }
        mix(journal ?? ""); mix(journalAbbrev ?? ""); mix(year.map(String.init) ?? ""); mix(language ?? "")
        publicationTypes.forEach(mix); keywords.forEach(mix)
        for m in mesh { mix(m.descriptor); mix(m.ui); mix(m.majorTopic ? "Y" : "N"); m.qualifiers.forEach(mix) }
        mix(doi ?? ""); mix(pmcid ?? "")
        return h
    }
}

/// Minimal JSON writing for the few array columns (faster than JSONEncoder on the hot path).
enum JSON {
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
                else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
    static func strings(_ items: [String]) -> String { array(items.map(string)) }
}
