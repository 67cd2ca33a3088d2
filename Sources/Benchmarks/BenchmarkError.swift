import Foundation

/// What can go wrong in a benchmark or a run report, with the file it concerns.
public enum BenchmarkError: LocalizedError, Equatable, Sendable, CustomStringConvertible {
    /// A file that exists but cannot be read (or decoded), or cannot be written.
    case unreadable(file: String, reason: String)
    /// A float32 vector file whose size is not a whole number of rows.
    case partialRows(file: String, bytes: Int, dimension: Int)
    /// Questions whose documents the corpus lacks.
    case missingDocuments(db: String, missing: Int, questions: Int)
    /// A PubMedQA record whose key is not a PMID (the RAG evaluation looks documents up by PMID).
    case nonNumericPMID(file: String, id: String)
    /// A distractor source that holds fewer usable articles than asked for.
    case tooFewDistractors(files: [String], found: Int, wanted: Int)
    /// A report folder holding an unfinished run with other settings.
    case resumeConflict(dir: String, stored: String, now: String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(file, reason): return "\(file): \(reason)"
        case let .partialRows(file, bytes, d): return "\(file): \(bytes) bytes is not a whole number of \(d)-d float32 rows"
        case let .missingDocuments(db, missing, questions):
            return "\(missing) of \(questions) question PMIDs are not in \(db); ingest the pqal JSONL first"
        case let .nonNumericPMID(file, id):
            return "\(file): record \(id) is not keyed by a PMID (digits); the RAG evaluation needs each item's PMID"
        case let .tooFewDistractors(files, found, wanted):
            return "\(files.joined(separator: ", ")): \(found) articles with an abstract (not among the items), \(wanted) asked for; lower --count or add files"
        case let .resumeConflict(dir, stored, now):
            return "\(dir) holds an unfinished run with other settings (stored: \(stored); now: \(now)); remove its partial/ folder or choose another --report"
        }
    }

    public var description: String { errorDescription ?? "" }
}
