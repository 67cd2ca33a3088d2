import CKernels
import Foundation
import XCTest
@testable import Tensor

final class ParallelTests: XCTestCase {
    func testChunksCoverEveryIndexOnce() {
        for (count, chunks) in [(0, 2), (1, 4), (5, 2), (10, 3), (1000, 7), (3, 10)] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
                let out = UncheckedSendable(h)
                Parallel.forEach(0..<count, chunks: chunks) { r in
                    XCTAssertFalse(r.isEmpty)
                    for i in r { out.value[i] += 1 }
                }
            }
            XCTAssertEqual(hits, [Int](repeating: 1, count: count), "count \(count) chunks \(chunks)")
        }
    }

    func testForEachIndexAndOffsetRanges() {
        var hits = [Int](repeating: 0, count: 20)
        hits.withUnsafeMutableBufferPointer { h in
            let out = UncheckedSendable(h)
            Parallel.forEachIndex(5..<15) { out.value[$0] += 1 }
            Parallel.forEach(15..<20) { r in for i in r { out.value[i] += 2 } }
        }
        XCTAssertEqual(hits, [Int](repeating: 0, count: 5) + [Int](repeating: 1, count: 10) + [Int](repeating: 2, count: 5))
    }

    /// The worker pool under the conditions decode puts it in: many short jobs back to back, a
    /// parallel call from inside a task (falls back to GCD), and jobs from several threads at once
    /// (one gets the pool, the others fall back). Every index must run exactly once.
    func testPoolManyJobsNestedAndConcurrentCallers() {
        XCTAssertEqual(Int(ck_pool_workers()), Parallel.coreCount - 1)
        // 20,000 short jobs: a lost or repeated task would show in the totals.
        var hits = [Int](repeating: 0, count: 64)
        hits.withUnsafeMutableBufferPointer { h in
            let out = UncheckedSendable(h)
            for _ in 0..<20_000 { Parallel.forEachIndex(0..<64) { out.value[$0] += 1 } }
        }
        XCTAssertEqual(hits, [Int](repeating: 20_000, count: 64))

        // Nested: each outer task runs an inner parallel loop over its own row.
        var grid = [Int](repeating: 0, count: 8 * 100)
        grid.withUnsafeMutableBufferPointer { g in
            let out = UncheckedSendable(g)
            Parallel.forEachIndex(0..<8) { row in
                Parallel.forEach(0..<100, chunks: 4) { r in for i in r { out.value[row * 100 + i] += 1 } }
            }
        }
        XCTAssertEqual(grid, [Int](repeating: 1, count: 800))

        // Four threads, each running 2,000 jobs into its own counters.
        let totals = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 32)
        totals.initialize(repeating: 0, count: 4 * 32)
        defer { totals.deallocate() }
        let shared = UncheckedSendable(totals)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<2_000 {
                Parallel.forEach(0..<32, chunks: 2) { r in for i in r { shared.value[caller * 32 + i] += 1 } }
            }
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: totals, count: 4 * 32)), [Int](repeating: 2_000, count: 4 * 32))
    }
}
