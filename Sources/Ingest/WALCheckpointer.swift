import Foundation
import SQLiteDB

/// Copies committed WAL frames into the database file on a second connection and thread, so
/// the ingest writer (the busiest thread) never stops for a checkpoint.
///
/// SQLite's passive checkpoint runs alongside a writer: the writer keeps appending to the WAL
/// and restarts it once every frame has been copied. While a checkpointer exists the writer's
/// automatic checkpoints are off; ``finish()`` restores them.
final class WALCheckpointer: @unchecked Sendable {
    private let writer: Database
    private let connection: Database
    private let savedAutocheckpoint: Int
    private let cond = NSCondition()
    private var pending = false
    private var stopped = false
    private let exited = DispatchSemaphore(value: 0)

    /// `nil` when the store is not a WAL file (e.g. in memory) or a second connection fails;
    /// the writer then checkpoints by itself as usual.
    init?(store: CorpusStore) {
        writer = store.db
        guard (try? writer.scalarText("PRAGMA journal_mode")) == "wal",
              let second = try? Database(path: writer.path),
              let saved = try? writer.scalarInt("PRAGMA wal_autocheckpoint"),
              (try? writer.execute("PRAGMA wal_autocheckpoint = 0")) != nil
        else { return nil }
        connection = second
        savedAutocheckpoint = saved
        let thread = Thread { [self] in run() }
        thread.name = "wal-checkpoint"
        thread.start()
    }

    /// Asks for a checkpoint (after a commit); requests made while one runs are merged.
    func signal() {
        cond.lock(); pending = true; cond.signal(); cond.unlock()
    }

    /// Stops the thread and gives the writer its automatic checkpoints back.
    func finish() {
        cond.lock(); stopped = true; cond.signal(); cond.unlock()
        exited.wait()
        try? writer.execute("PRAGMA wal_autocheckpoint = \(savedAutocheckpoint)")
    }

    private func run() {
        while true {
            cond.lock()
            while !pending && !stopped { cond.wait() }
            let stop = stopped
            pending = false
            cond.unlock()
            if stop { break }
            // Best effort: a failed checkpoint leaves frames in the WAL for the next one.
            try? connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        }
        exited.signal()
    }
}
