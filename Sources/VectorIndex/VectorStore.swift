import Foundation
import Ingest
import SQLiteDB

/// Passage vectors in the corpus SQLite file, next to the passages they embed.
///
/// Tables (created on first use, in the same file as the corpus):
/// - `vectors(passage_id → passages.id ON DELETE CASCADE, vector BLOB)`: little-endian float32,
///   `dimension` values; a deleted or replaced passage takes its vector with it.
/// - `vector_meta(key, value)`: the `model` and `dimension` every stored vector was made with.
/// - `ann_graphs(name, model, dimension, vectors, built_at, data)`: serialized ANN indexes.
///
/// Passage ids are never reused (the corpus uses AUTOINCREMENT), so a stored vector or graph
/// node always refers to the passage it was made from, or to nothing. The passages themselves
/// are read through ``CorpusStore``'s API, never by SQL on its tables.
public final class VectorStore: @unchecked Sendable {
    public let corpus: CorpusStore
    var db: Database { corpus.db }
    /// False only for a read-only corpus that was never embedded (it reads as empty).
    private let hasTables: Bool

    /// Whether the corpus was opened read-only: nothing (vectors, graphs) can be saved.
    public var isReadOnly: Bool { db.readOnly }

    /// Opens the vector tables of `corpus`, creating them if needed (unless it is read-only).
    public init(corpus: CorpusStore) throws {
        self.corpus = corpus
        if corpus.db.readOnly {
            hasTables = try corpus.db.hasTable("vectors")
            return
        }
        hasTables = true
        try db.execute("""
        CREATE TABLE IF NOT EXISTS vectors(
            passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS vector_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS ann_graphs(
            name TEXT PRIMARY KEY, model TEXT NOT NULL, dimension INTEGER NOT NULL,
            vectors INTEGER NOT NULL, built_at TEXT NOT NULL, data BLOB NOT NULL
        );
        """)
    }

    // MARK: Model

    /// The model and dimension of the stored vectors, or nil before the first embedding.
    public func model() throws -> (id: String, dimension: Int)? {
        guard hasTables else { return nil }
        let st = try db.prepare("SELECT (SELECT value FROM vector_meta WHERE key = 'model'), (SELECT value FROM vector_meta WHERE key = 'dimension')")
        guard try st.step(), let id = st.string(0), let dim = st.string(1).flatMap(Int.init) else { return nil }
        return (id, dim)
    }

    /// Checks that vectors made by `modelID` with `dimension` can join the stored ones.
    /// - Throws: ``RetrievalError/modelMismatch(stored:storedDimension:requested:requestedDimension:)``.
    public func checkCompatible(modelID: String, dimension: Int) throws {
        if let m = try model(), m.id != modelID || m.dimension != dimension {
            throw RetrievalError.modelMismatch(stored: m.id, storedDimension: m.dimension, requested: modelID, requestedDimension: dimension)
        }
    }

    // MARK: Embedding progress

    /// Passages that have no vector yet (a vector goes with its passage, so this is a difference of counts).
    public func pendingCount() throws -> Int { try corpus.passageCount() - count() }

    /// The number of stored vectors.
    public func count() throws -> Int { hasTables ? try db.scalarInt("SELECT count(*) FROM vectors") : 0 }

    /// Up to `limit` passages without a vector, oldest first, with the text to embed
    /// (title, a newline, then the passage text).
    /// - Parameter after: only passages with larger ids (a resumed scan skips what it has seen).
    public func pendingPassages(limit: Int, after: Int64 = 0) throws -> [(id: Int64, text: String)] {
        let has = hasTables ? try db.prepare("SELECT 1 FROM vectors WHERE passage_id = ?") : nil
        var pending: [Int64] = [], cursor = after
        while pending.count < limit {
            let ids = try corpus.passageIDs(after: cursor, limit: max(limit, 1024))
            guard let last = ids.last else { break }
            for id in ids where pending.count < limit {
                defer { has?.reset() }
                try has?.bind([.int(Int(id))])
                if try has?.step() != true { pending.append(id) }
            }
            cursor = last
        }
        return try corpus.passageTexts(ids: pending).map { ($0.id, VectorStore.embeddingText(title: $0.title, text: $0.text)) }
    }

    /// What the embedder sees for a passage: its document title, a newline, the passage.
    public static func embeddingText(title: String, text: String) -> String {
        title.isEmpty ? text : title + "\n" + text
    }

    /// Stores vectors for passages in one transaction, recording the model on first use.
    /// - Throws: ``RetrievalError/modelMismatch(stored:storedDimension:requested:requestedDimension:)``
    ///   or ``VectorIndexError/wrongDimension(id:expected:actual:)``.
    public func store(ids: [Int64], vectors: [[Float]], modelID: String, dimension: Int) throws {
        try checkCompatible(modelID: modelID, dimension: dimension)
        try db.transaction {
            try db.prepare("INSERT OR IGNORE INTO vector_meta VALUES ('model', ?), ('dimension', ?)").run([.text(modelID), .text(String(dimension))])
            let ins = try db.prepare("INSERT OR REPLACE INTO vectors(passage_id, vector) VALUES (?, ?)")
            for (id, v) in zip(ids, vectors) {
                guard v.count == dimension else { throw VectorIndexError.wrongDimension(id: id, expected: dimension, actual: v.count) }
                try ins.bind(.int(Int(id)), at: 1)
                try v.withUnsafeBytes { try ins.bindBlob($0, at: 2) }
                try ins.step()
                ins.reset()
            }
        }
    }

    // MARK: Reading

    /// Every stored vector as one contiguous row-major matrix.
    /// - Returns: ids (N) and values (N, D).
    /// - Throws: ``RetrievalError/corruptVector(passageID:bytes:expected:)`` for a blob of the wrong size.
    public func loadAll() throws -> (ids: [Int64], values: [Float], dimension: Int) {
        guard let m = try model() else { return ([], [], 0) }
        let n = try count()
        var ids: [Int64] = []
        ids.reserveCapacity(n)
        var values = [Float]()
        values.reserveCapacity(n * m.dimension)
        let st = try db.prepare("SELECT passage_id, vector FROM vectors ORDER BY passage_id")
        while try st.step() {
            let id = Int64(st.int(0))
            let blob = st.blob(1)
            guard blob.count == m.dimension * 4 else {
                throw RetrievalError.corruptVector(passageID: id, bytes: blob.count, expected: m.dimension * 4)
            }
            ids.append(id)
            values.append(contentsOf: blob.bindMemory(to: Float.self))
        }
        return (ids, values, m.dimension)
    }

    // MARK: ANN graphs

    /// Saves a serialized index under `name`.
    public func saveGraph(name: String, modelID: String, dimension: Int, vectors: Int, data: [UInt8]) throws {
        try db.prepare("INSERT OR REPLACE INTO ann_graphs VALUES (?, ?, ?, ?, datetime('now'), ?)")
            .run([.text(name), .text(modelID), .int(dimension), .int(vectors), .blob(data)])
    }

    /// The serialized index saved under `name`, with the model it was built for.
    public func loadGraph(name: String) throws -> (modelID: String, dimension: Int, data: [UInt8])? {
        guard hasTables else { return nil }
        let st = try db.prepare("SELECT model, dimension, data FROM ann_graphs WHERE name = ?")
        try st.bind([.text(name)])
        guard try st.step() else { return nil }
        return (st.string(0) ?? "", st.int(1), Array(st.blob(2)))
    }

    /// Forgets every vector and graph (e.g. to switch models).
    public func reset() throws {
        try db.execute("DELETE FROM vectors; DELETE FROM vector_meta; DELETE FROM ann_graphs")
    }
}

/// Errors of retrieval over a corpus: they name the model, dimension, passage or file on both sides.
public enum RetrievalError: Error, LocalizedError, CustomStringConvertible, Equatable, Sendable {
    /// The corpus was embedded with another model or dimension than the one asked for.
    case modelMismatch(stored: String, storedDimension: Int, requested: String, requestedDimension: Int)
    /// Dense search was asked for before any passage was embedded.
    case notEmbedded(db: String)
    /// There is no corpus file at `db`.
    case noCorpus(db: String)
    /// A stored vector blob does not have `dimension × 4` bytes.
    case corruptVector(passageID: Int64, bytes: Int, expected: Int)
    /// A filter value is invalid (e.g. a reversed year range).
    case badFilter(String)

    public var description: String {
        switch self {
        case let .modelMismatch(stored, sd, requested, rd):
            return "the corpus vectors were made with \(stored) (\(sd)-d) but the query uses \(requested) (\(rd)-d); re-embed with `selfspec embed --reset` or use the same model"
        case let .notEmbedded(db):
            return "no passage of \(db) is embedded yet; run `selfspec embed --db \(db)` first (or use --mode bm25)"
        case let .noCorpus(db):
            return "no corpus at \(db); create one with: selfspec ingest PATH --db \(db)"
        case let .corruptVector(id, bytes, expected):
            return "the vector of passage \(id) has \(bytes) bytes, expected \(expected); run `selfspec embed --reset` to rebuild"
        case let .badFilter(message): return "bad filter: \(message)"
        }
    }
    public var errorDescription: String? { description }
}
