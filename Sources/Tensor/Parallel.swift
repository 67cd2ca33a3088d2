import Dispatch
import Foundation

/// Runs independent pieces of work on all cores with `DispatchQueue.concurrentPerform`.
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
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                // The first `extra` pieces get one more index.
                let start = range.lowerBound + piece * base + min(piece, extra)
                let end = start + base + (piece < extra ? 1 : 0)
                box.value(start..<end)
            }
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
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: range.count) { box.value(range.lowerBound + $0) }
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
