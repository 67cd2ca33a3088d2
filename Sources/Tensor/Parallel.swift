import CKernels
import Dispatch
import Foundation

/// Runs independent pieces of work on all cores.
///
/// Work goes to a persistent pool of spinning worker threads (`ck_pool_run` in `CKernels`): a
/// decode step has about a hundred short parallel regions, and waking GCD threads through the
/// kernel for each cost more than the work saved. When the pool is busy (a call from inside a
/// task, or another thread's job) the work runs on `DispatchQueue.concurrentPerform` instead.
///
/// The body receives a contiguous sub-range, so per-chunk setup (scratch buffers, pointers) is
/// paid once per chunk rather than once per index. Chunks must write disjoint memory.
public enum Parallel {
    /// Active processor count of this machine (at least 1).
    public static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` once per chunk of `range`, chunks running concurrently.
    ///
    /// The range is split into at most `chunks` contiguous pieces of near-equal size (never empty);
    /// with one piece the body runs on the calling thread. Returns when every chunk has finished.
    /// - Parameters:
    ///   - range: the indices to cover.
    ///   - chunks: the number of pieces; defaults to ``coreCount``. More pieces than cores balance
    ///     uneven work at a small scheduling cost.
    ///   - body: the work for one sub-range; must be safe to run concurrently with itself.
    public static func forEach(_ range: Range<Int>, chunks: Int = coreCount,
                               _ body: (Range<Int>) -> Void) {
        let pieces = min(max(1, chunks), range.count)
        guard pieces > 1 else {
            if !range.isEmpty { body(range) }
            return
        }
        let base = range.count / pieces, extra = range.count % pieces
        run(tasks: pieces) { piece in
            // The first `extra` pieces get one more index.
            let start = range.lowerBound + piece * base + min(piece, extra)
            body(start..<(start + base + (piece < extra ? 1 : 0)))
        }
    }

    /// Calls `body` for every index of `range`, indices running concurrently (dynamically scheduled).
    ///
    /// Use for a modest number of uneven, fairly large work items (attention heads, sequences).
    /// - Parameters:
    ///   - range: the indices to cover.
    ///   - body: the work for one index; must be safe to run concurrently with itself.
    public static func forEachIndex(_ range: Range<Int>, _ body: (Int) -> Void) {
        guard range.count > 1 else {
            if let i = range.first { body(i) }
            return
        }
        run(tasks: range.count) { body(range.lowerBound + $0) }
    }

    /// `task(0)` ... `task(tasks - 1)` concurrently: on the worker pool, or GCD when it is busy.
    private static func run(tasks: Int, _ task: (Int) -> Void) {
        withoutActuallyEscaping(task) { task in
            var job = task
            let ran = withUnsafeMutablePointer(to: &job) { job in
                ck_pool_run(tasks, { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, job)
            }
            if ran == 0 {
                let box = UncheckedSendable(task)
                DispatchQueue.concurrentPerform(iterations: tasks) { box.value($0) }
            }
        }
    }
}

/// Carries a value the compiler cannot prove `Sendable` (a closure capturing unsafe pointers, a
/// pointer to a buffer whose disjoint parts several threads write) across a concurrency boundary.
/// The user promises the concurrent accesses are disjoint or read-only.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    /// The wrapped value.
    public let value: Value
    /// Wraps `value`.
    /// - Parameter value: the value to carry.
    public init(_ value: Value) { self.value = value }
}
