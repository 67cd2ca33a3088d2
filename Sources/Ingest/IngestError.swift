/// Errors of the ingest module. Each names where the problem is: file, line, column, record.
public enum IngestError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file does not exist or cannot be opened.
    case cannotOpen(file: String, reason: String)
    /// The XML is not well-formed (or the gzip stream is truncated/corrupt).
    case malformedXML(file: String, line: Int, column: Int, message: String, pmid: Int?)
    /// The file is XML but not of the expected kind.
    case notPubMed(file: String, rootElement: String)
    case notJATS(file: String, rootElement: String)
    /// A record is unusable (e.g. no PMID).
    case badRecord(file: String, line: Int, message: String)
    /// A JSONL line is not valid or misses a field.
    case badJSONLine(file: String, line: Int, message: String)
    /// No ingestible files matched a path or glob.
    case noInputs(path: String)
    /// The database was written by a newer SelfSpec.
    case schemaTooNew(file: String, found: Int, supported: Int)
    /// The database could not be written (disk full, locked by another writer, I/O error) while
    /// ingesting `file`; the transactions committed before stay.
    case storeFailed(db: String, file: String, code: Int32, message: String)
    /// The run was interrupted (Ctrl-C); what was committed stays.
    case interrupted

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason): return "cannot open \(file): \(reason)"
        case let .malformedXML(file, line, column, message, pmid):
            let rec = pmid.map { " (after PMID \($0))" } ?? ""
            return "\(file):\(line):\(column): malformed XML\(rec): \(message)"
        case let .notPubMed(file, root): return "no PubmedArticle in \(file), root element <\(root)>"
        case let .notJATS(file, root): return "no JATS <article> in \(file), root element <\(root)>"
        case let .badRecord(file, line, message): return "\(file):\(line): \(message)"
        case let .badJSONLine(file, line, message): return "\(file):\(line): \(message)"
        case let .noInputs(path): return "no ingestible files at \(path) (expected .xml, .xml.gz, .nxml, .txt, .md, .jsonl)"
        case let .schemaTooNew(file, found, supported):
            return "\(file) has schema version \(found); this selfspec supports up to \(supported). Upgrade selfspec."
        case let .storeFailed(db, file, code, message):
            let why: String
            switch code {
            case 13: why = "the disk is full"
            case 5, 6: why = "another process holds the write lock (one writer at a time)"
            default: why = "SQLite error \(code): \(message)"
            }
            return "\(db): cannot write (\(why)) while ingesting \(file); what was committed before is kept and intact — fix this and run the same command again to resume"
        case .interrupted: return "interrupted; everything committed so far is kept — run the same command again to resume"
        }
    }
}
