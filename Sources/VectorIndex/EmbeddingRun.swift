import Foundation

// MARK: - Embedding the pending passages of a corpus

/// What the progress callback of ``VectorStore/embedPending(with:batchSize:limit:progress:)``
/// asks for next (the library reports; the caller decides, e.g. on Ctrl-C).
public enum EmbeddingControl: Sendable {
    /// Continue with the next batch.
    case more
    /// Stop after the batch just committed.
    case stop
}

/// What ``VectorStore/embedPending(with:batchSize:limit:progress:)`` did.
public struct EmbeddingRunReport: Sendable, Equatable {
    /// Passages embedded and committed by this run.
    public var embedded = 0
    /// Passages that were pending when the run started (capped by its limit).
    public var planned = 0
    /// Whether the progress callback stopped the run early.
    public var stopped = false
    /// Wall time of the run.
    public var seconds = 0.0
}

extension VectorStore {
    /// Embeds passages that have no vector yet, oldest first, committing each batch in its own
    /// transaction — so a run killed at any moment loses at most one batch, and the next run
    /// continues with exactly the passages still missing (incremental and resumable).
    /// - Parameters:
    ///   - embedder: the model; must match the stored vectors' model and dimension.
    ///   - batchSize: passages per committed batch (at least 1).
    ///   - limit: stop after this many passages (`nil`: all pending).
    ///   - progress: called after each committed batch with (done, planned); return `.stop` to end.
    /// - Returns: what was embedded.
    /// - Throws: ``RetrievalError/modelMismatch(stored:storedDimension:requested:requestedDimension:)``
    ///   before anything is embedded, embedder errors, SQLite errors.
    public func embedPending(with embedder: any Embedder, batchSize: Int = 256, limit: Int? = nil,
                             progress: (_ done: Int, _ planned: Int) -> EmbeddingControl = { _, _ in .more }) throws -> EmbeddingRunReport {
        precondition(batchSize >= 1, "batchSize must be positive")
        try checkCompatible(modelID: embedder.modelID, dimension: embedder.dimension)
        let start = Date()
        var report = EmbeddingRunReport()
        let pending = try pendingCount()
        report.planned = limit.map { min(max($0, 0), pending) } ?? pending
        var cursor: Int64 = 0   // every passage up to here has a vector
        while report.embedded < report.planned {
            let items = try pendingPassages(limit: min(batchSize, report.planned - report.embedded), after: cursor)
            guard let last = items.last else { break }
            cursor = last.id
            let vectors = try embedder.embed(items.map(\.text))
            try store(ids: items.map(\.id), vectors: vectors, modelID: embedder.modelID, dimension: embedder.dimension)
            report.embedded += items.count
            if progress(report.embedded, report.planned) == .stop, report.embedded < report.planned {
                report.stopped = true
                break
            }
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }
}
