import CSQLite

/// A SQLite failure: the result code, SQLite's message and the statement that failed.
public struct SQLiteError: Error, Equatable, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    public var sql: String

    public var description: String { "SQLite error \(code): \(message) [\(sql.prefix(120))]" }
}

/// A SQLite connection, owned once and closed in `deinit`.
///
/// Result codes become ``SQLiteError`` at this boundary. The corpus store (`Ingest`) and the
/// vector store (`VectorIndex`) each keep their own tables in the same file through this type.
public final class Database: @unchecked Sendable {
    /// The raw handle, for modules that add their own statements.
    public let handle: OpaquePointer
    public let path: String

    /// Whether the connection was opened read-only (it can never change the file).
    public let readOnly: Bool

    /// Opens (creating if needed, unless `readOnly`) the database at `path`.
    public init(path: String, readOnly: Bool = false) throws {
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: "\(msg) (\(path))", sql: "open")
        }
        handle = db
        self.path = path
        self.readOnly = readOnly
        sqlite3_busy_timeout(db, 10_000)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: msg, sql: sql)
        }
    }

    /// Compiles a statement.
    public func prepare(_ sql: String) throws -> Statement {
        try Statement(db: self, sql: sql)
    }

    /// Runs `body` in a transaction; rolls back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The rowid of the last insert.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// The first column of the first row of `sql`, as an integer (0 when there is no row).
    public func scalarInt(_ sql: String, _ args: [SQLValue] = []) throws -> Int {
        let st = try prepare(sql)
        try st.bind(args)
        return try st.step() ? st.int(0) : 0
    }

    /// The first column of the first row of `sql`, as text (`nil` when there is no row or it is NULL).
    public func scalarText(_ sql: String, _ args: [SQLValue] = []) throws -> String? {
        let st = try prepare(sql)
        try st.bind(args)
        return try st.step() ? st.string(0) : nil
    }

    /// Whether the database has a table or view named `name`.
    public func hasTable(_ name: String) throws -> Bool {
        try scalarInt("SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", [.text(name)]) > 0
    }

    func error(_ rc: Int32, _ sql: String) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }
}

/// A value to bind to a statement parameter.
public enum SQLValue: Sendable {
    case int(Int)
    case double(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// A compiled statement, finalized in `deinit`. Reuse it with ``reset()`` on hot paths.
public final class Statement {
    let db: Database
    let sql: String
    private let stmt: OpaquePointer

    init(db: Database, sql: String) throws {
        var s: OpaquePointer?
        let rc = sqlite3_prepare_v3(db.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil)
        guard rc == SQLITE_OK, let s else { throw db.error(rc, sql) }
        self.db = db
        self.sql = sql
        self.stmt = s
    }

    deinit { sqlite3_finalize(stmt) }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds parameters 1...n in order.
    public func bind(_ values: [SQLValue]) throws {
        for (i, v) in values.enumerated() { try bind(v, at: Int32(i + 1)) }
    }

    public func bind(_ value: SQLValue, at index: Int32) throws {
        let rc: Int32
        switch value {
        case .int(let v): rc = sqlite3_bind_int64(stmt, index, Int64(v))
        case .double(let v): rc = sqlite3_bind_double(stmt, index, v)
        case .text(var v):
            // The UTF-8 bytes with their length: no C-string copy, no strlen.
            // (An empty buffer has no base address, and a nil pointer would bind NULL.)
            rc = v.isEmpty ? sqlite3_bind_text(stmt, index, "", 0, Statement.transient) : v.withUTF8 { b in
                b.withMemoryRebound(to: CChar.self) { c in
                    sqlite3_bind_text64(stmt, index, c.baseAddress, UInt64(c.count), Statement.transient, UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let v):
            rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), Statement.transient) }
        case .null: rc = sqlite3_bind_null(stmt, index)
        }
        guard rc == SQLITE_OK else { throw db.error(rc, sql) }
    }

    /// Binds raw bytes as a blob (no intermediate array).
    public func bindBlob(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        let rc = sqlite3_bind_blob(stmt, index, bytes.baseAddress, Int32(bytes.count), Statement.transient)
        guard rc == SQLITE_OK else { throw db.error(rc, sql) }
    }

    /// Advances; `true` when a row is available.
    @discardableResult
    public func step() throws -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw db.error(rc, sql)
    }

    /// Binds, runs to completion, and resets.
    public func run(_ values: [SQLValue] = []) throws {
        try bind(values)
        defer { reset() }
        while try step() {}
    }

    public func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    public func int(_ col: Int32) -> Int { Int(sqlite3_column_int64(stmt, col)) }
    public func double(_ col: Int32) -> Double { sqlite3_column_double(stmt, col) }
    public func isNull(_ col: Int32) -> Bool { sqlite3_column_type(stmt, col) == SQLITE_NULL }
    public func string(_ col: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, col) else { return nil }
        return String(cString: p)
    }
    /// The blob bytes of a column, valid until the next step/reset.
    public func blob(_ col: Int32) -> UnsafeRawBufferPointer {
        let n = Int(sqlite3_column_bytes(stmt, col))
        guard n > 0, let p = sqlite3_column_blob(stmt, col) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: p, count: n)
    }
}
