import Foundation
import SQLiteDB

/// Ingests files into a ``CorpusStore``: expands paths, picks a reader per file, chunks
/// documents, and writes in batched transactions.
///
/// Parsing (plus inflating, on its own thread) and storing overlap: a reader thread parses and
/// chunks while the calling thread writes the previous batch. Everything written before an error
/// or an interruption stays committed; a file is marked done only when it was read to its end,
/// so running the same command again resumes without duplicates.
public final class Ingester {
    /// Ingest settings. Defaults suit the 256-token MiniLM embedder.
    public struct Options: Sendable {
        public var chunker: Chunker.Options = .init()
        /// Documents per transaction. Large transactions let SQLite's FTS5 index write fewer,
        /// bigger segments (less merging); the reader hands documents over in smaller chunks.
        public var batchSize = 4096
        /// Continue with the next file after a bad one (the run still reports the error).
        public var keepGoing = false
        /// Re-read files already ingested with the same size and modification time.
        public var force = false
        public init() {}
    }

    /// A snapshot for progress lines.
    public struct Progress: Sendable {
        public var file: String = ""
        public var filesDone = 0
        public var filesTotal = 0
        /// On-disk bytes consumed over all files, and their total size.
        public var bytesDone = 0
        public var bytesTotal = 0
        public var documents = 0
        public var passages = 0
    }

    /// What a run did.
    public struct Report: Sendable, Codable {
        public var files = 0
        public var filesSkippedUnchanged = 0
        public var filesFailed = 0
        public var documentsRead = 0
        public var inserted = 0
        public var replaced = 0
        public var unchanged = 0
        public var olderVersionSkipped = 0
        public var deleted = 0
        public var passages = 0
        /// Documents stored without searchable text (e.g. no abstract): no passages.
        public var withoutText = 0
        /// The same key twice in one file (the later record wins).
        public var duplicatesInFile = 0
        /// Records of unfinished files skipped on resume: committed by an earlier, interrupted run.
        public var resumedRecords = 0
        /// Errors (file, line, column, PMID) and notable warnings, capped at 50 lines.
        public var messages: [String] = []
        public var seconds = 0.0
    }

    public let store: CorpusStore
    public let options: Options
    private let chunker: Chunker

    /// - Throws: ``ChunkerError`` for invalid chunking options.
    public init(store: CorpusStore, options: Options = .init()) throws {
        self.store = store
        self.options = options
        self.chunker = try Chunker(options: options.chunker)
    }

    // MARK: Running

    /// Ingests every file under `paths` (files, directories, globs) in order.
    /// - Parameters:
    ///   - progress: called on the calling thread after each committed batch.
    ///   - shouldStop: polled between documents; when it returns true the run commits what it has
    ///     and throws ``IngestError/interrupted``.
    /// - Returns: the report; when a file fails and `keepGoing` is off, the report is attached to
    ///   the thrown ``IngestFailure``.
    public func ingest(paths: [String], progress: (Progress) -> Void = { _ in },
                       shouldStop: @escaping @Sendable () -> Bool = { false }) throws -> Report {
        let start = Date()
        var report = Report()
        let files = try Ingester.expand(paths)
        var p = Progress()
        p.filesTotal = files.count
        p.bytesTotal = files.reduce(0) { $0 + $1.size }
        var firstError: IngestError?
        for file in files {
            p.file = file.path
            defer { p.filesDone += 1 }
            if !options.force, try store.isIngested(path: file.path, size: file.size, mtime: file.mtime) {
                report.filesSkippedUnchanged += 1
                p.bytesDone += file.size
                progress(p)
                continue
            }
            report.files += 1
            let base = p.bytesDone
            do {
                try ingest(file: file, report: &report, shouldStop: shouldStop) { read, docs, passages in
                    p.bytesDone = base + read
                    p.documents += docs
                    p.passages += passages
                    progress(p)
                }
            } catch let error as SQLiteError {
                report.seconds = Date().timeIntervalSince(start)
                throw IngestFailure(error: .storeFailed(db: store.db.path, file: file.path, code: error.code, message: error.message), report: report)
            } catch let error as IngestError {
                if case .interrupted = error {
                    report.seconds = Date().timeIntervalSince(start)
                    throw IngestFailure(error: error, report: report)
                }
                report.filesFailed += 1
                report.note(error.description)
                firstError = firstError ?? error
                if !options.keepGoing {
                    report.seconds = Date().timeIntervalSince(start)
                    throw IngestFailure(error: error, report: report)
                }
            }
            p.bytesDone = base + file.size
        }
        report.seconds = Date().timeIntervalSince(start)
        if let firstError, !options.keepGoing { throw IngestFailure(error: firstError, report: report) }
        return report
    }

    private func ingest(file: InputFile, report: inout Report, shouldStop: @escaping @Sendable () -> Bool,
                        progress: (_ bytesRead: Int, _ docs: Int, _ passages: Int) -> Void) throws {
        let queue = BatchQueue(capacity: 4)
        let reader = file.format.reader
        let chunker = self.chunker
        let chunkSize = min(options.batchSize, 256)
        let path = file.path
        // An interrupted run of this file committed its first `skip` records: parse past them.
        let resumed = options.force ? CorpusStore.FileProgress() : try store.progress(path: file.path, size: file.size, mtime: file.mtime)
        let skip = resumed.records
        report.resumedRecords += skip
        // Producer: parse + chunk on a background thread, handing over small chunks.
        let thread = Thread {
            var batch: [Chunked] = []
            var bytes = 0, index = 0
            do {
                try Ingester.read(reader, path) { read in bytes = read } emit: { item in
                    if shouldStop() || queue.isClosed { throw IngestError.interrupted }
                    index += 1
                    if index <= skip { return }
                    switch item {
                    case .document(let d): batch.append(.document(d, chunker.chunk(d), CorpusStore.Row(d)))
                    case .deletion(let del): batch.append(.deletion(del))
                    }
                    if batch.count >= chunkSize {
                        queue.put(.batch(batch, bytesRead: bytes))
                        batch = []
                    }
                }
                queue.put(.batch(batch, bytesRead: bytes))
                queue.put(.done(nil))
            } catch {
                queue.put(.batch(batch, bytesRead: bytes))
                queue.put(.done(error as? IngestError ?? .cannotOpen(file: path, reason: "\(error)")))
            }
        }
        thread.start()
        defer { queue.close() }

        // Consumer: write chunks; a transaction spans chunks up to `batchSize` documents. WAL
        // checkpoints run on a second connection and thread, off this (the busiest) one.
        let checkpointer = WALCheckpointer(store: store)
        defer { checkpointer?.finish() }
        let db = store.db
        var inTransaction = false, inThisTransaction = 0, records = skip
        var seen = Set<String>()
        var docs = resumed.documents, deletions = resumed.deletions
        func commit() throws {
            guard inTransaction else { return }
            try store.recordProgress(path: file.path, size: file.size, mtime: file.mtime,
                                     .init(records: records, documents: docs, deletions: deletions))
            try db.execute("COMMIT")
            inTransaction = false
            inThisTransaction = 0
            checkpointer?.signal()
        }
        defer { if inTransaction { try? db.execute("ROLLBACK") } }
        while true {
            switch queue.take() {
            case let .batch(items, bytesRead):
                if !inTransaction && !items.isEmpty { try db.execute("BEGIN IMMEDIATE"); inTransaction = true }
                var nDocs = 0, nPassages = 0
                for item in items {
                    switch item {
                    case let .document(d, passages, row):
                        nDocs += 1
                        if !seen.insert(d.key).inserted {
                            report.duplicatesInFile += 1
                            report.note("\(d.file):\(d.line): duplicate \(d.pmid != nil ? "PMID" : "id") \(d.key) in this file; the later record replaces the earlier one")
                        }
                        nPassages += report.count(try store.upsert(d, passages: passages, row: row), passages: passages.count)
                    case let .deletion(del):
                        deletions += del.pmids.count
                        report.deleted += try store.delete(keys: del.pmids.map(String.init))
                    }
                }
                inThisTransaction += items.count
                records += items.count
                docs += nDocs
                if inThisTransaction >= options.batchSize { try commit() }
                report.documentsRead += nDocs
                report.passages += nPassages
                progress(bytesRead, nDocs, nPassages)
            case let .done(error):
                // What was read before an error or an interruption is kept.
                if let error { try commit(); throw error }
                if !inTransaction { try db.execute("BEGIN IMMEDIATE"); inTransaction = true }
                try store.markIngested(path: file.path, size: file.size, mtime: file.mtime, documents: docs, deletions: deletions)
                try db.execute("COMMIT")
                inTransaction = false
                checkpointer?.signal()
                return
            }
        }
    }

    /// Stores documents made in memory rather than read from a file (e.g. an evaluation's own
    /// abstracts): chunked like ingested files, `batchSize` documents per transaction.
    /// - Returns: the report (`files` stays 0).
    public func ingest(documents: [Document]) throws -> Report {
        let start = Date()
        var report = Report()
        for from in stride(from: 0, to: documents.count, by: options.batchSize) {
            try store.db.transaction {
                for d in documents[from..<min(from + options.batchSize, documents.count)] {
                    let passages = chunker.chunk(d)
                    report.documentsRead += 1
                    report.passages += report.count(try store.upsert(d, passages: passages), passages: passages.count)
                }
            }
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    private static func read(_ reader: any DocumentReader, _ path: String, progress: @escaping (Int) -> Void,
                             emit: (IngestItem) throws -> Void) throws {
        if let pubmed = reader as? PubMedReader {
            try pubmed.read(file: path, progress: progress, emit: emit)
        } else {
            try reader.read(file: path, emit: emit)
        }
    }

    private enum Chunked: Sendable {
        case document(Document, [Passage], CorpusStore.Row)
        case deletion(Deletion)
    }

    private enum Message: Sendable {
        case batch([Chunked], bytesRead: Int)
        case done(IngestError?)
    }

    /// A small bounded blocking queue between the reader thread and the writer.
    private final class BatchQueue: @unchecked Sendable {
        private let cond = NSCondition()
        private var items: [Message] = []
        private let capacity: Int
        private var closed = false
        init(capacity: Int) { self.capacity = capacity }

        var isClosed: Bool { cond.lock(); defer { cond.unlock() }; return closed }

        func put(_ m: Message) {
            cond.lock(); defer { cond.unlock() }
            while items.count >= capacity && !closed { cond.wait() }
            if closed { return }
            items.append(m)
            cond.broadcast()
        }

        func take() -> Message {
            cond.lock(); defer { cond.unlock() }
            while items.isEmpty { cond.wait() }
            let m = items.removeFirst()
            cond.broadcast()
            return m
        }

        /// Unblocks the producer; it stops at its next document.
        func close() { cond.lock(); closed = true; items.removeAll(); cond.broadcast(); cond.unlock() }
    }
}

extension Ingester.Report {
    /// Counts one stored document; returns the passages it wrote.
    mutating func count(_ result: CorpusStore.UpsertResult, passages: Int) -> Int {
        if passages == 0 { withoutText += 1 }
        switch result {
        case .inserted: inserted += 1; return passages
        case .replaced: replaced += 1; return passages
        case .unchanged: unchanged += 1
        case .olderVersionSkipped: olderVersionSkipped += 1
        }
        return 0
    }
}

/// A failed or interrupted run: the error and what was done (and committed) before it.
public struct IngestFailure: Error, CustomStringConvertible {
    public var error: IngestError
    public var report: Ingester.Report
    public var description: String { error.description }
}

extension Ingester.Report {
    mutating func note(_ message: String) {
        if messages.count < 50 { messages.append(message) }
        else if messages.count == 50 { messages.append("… further messages omitted") }
    }
}
