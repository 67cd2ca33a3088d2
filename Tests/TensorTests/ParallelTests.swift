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
}
