import CKernels
import Foundation
import XCTest
@testable import VectorIndex
import Tensor

/// The run-time dispatched dot product (CKernels `ck_dot`) against a double-precision sum, for
/// every length from 0 to 80 (all tail cases of the 32-, 16-, 8- and 4-wide loops) and 384.
final class DotKernelTests: XCTestCase {
    func testDotMatchesADoubleReferenceForEveryTailLength() {
        var rng = SplitMix64(seed: 5)
        var worst = 0.0
        for n in Array(0...80) + [384, 1000] {
            let a = (0..<n).map { _ in rng.nextUnitFloat() * 2 - 1 }, b = (0..<n).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let scale = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            let ours = a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in dotProduct(pa.baseAddress ?? UnsafePointer(bitPattern: 8)!, pb.baseAddress ?? UnsafePointer(bitPattern: 8)!, count: n) }
            }
            let err = abs(Double(ours) - exact) / max(scale, 1e-30)
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-6, "n = \(n): \(ours) vs \(exact)")
        }
        print("ck_dot (\(ck_dot_uses_avx_fma() == 1 ? "AVX + FMA" : "SSE") path): worst error relative to Σ|a·b| \(worst)")
        #if arch(x86_64) && os(Linux)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if flags.contains(" avx ") && flags.contains(" fma ") {
            XCTAssertEqual(ck_dot_uses_avx_fma(), 1, "this CPU has AVX and FMA: the fast path must be chosen")
        }
        #endif
    }
}

/// The batch search kernel `ck_ip_scan16` (AVX2 path on this CPU) and its portable scalar loop
/// against double-precision scores: the same hits above each query's threshold, scores within
/// float rounding. Query counts that leave a padded panel, row counts around the 6-row tile.
final class InnerProductScanTests: XCTestCase {
    func testScanMatchesDoubleReferenceOnBothPaths() {
        var rng = SplitMix64(seed: 17)
        var worst: Float = 0
        var checked = 0
        for (n, d, q) in [(1, 5, 1), (6, 8, 16), (13, 37, 17), (240, 384, 40), (101, 384, 3)] {
            let db = (0..<(n * d)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let queries = (0..<(q * d)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let panels = (q + 15) / 16
            var packed = [Float](repeating: .nan, count: panels * 16 * d)
            packed.withUnsafeMutableBufferPointer { ck_pack_panels16(queries, q, d, d, $0.baseAddress!) }
            // Double scores; each query's threshold keeps about a third of its rows, padding none.
            let truth = (0..<q).map { i in (0..<n).map { r in (0..<d).reduce(0.0) { $0 + Double(db[r * d + $1]) * Double(queries[i * d + $1]) } } }
            var thr = [Float](repeating: .infinity, count: panels * 16)
            for i in 0..<q { thr[i] = Float(truth[i].sorted()[n * 2 / 3]) }
            if q > 1 { thr[1] = -.infinity }   // one query keeps every row
            for portable in [false, true] {
                var hits = [ck_ip_hit](repeating: ck_ip_hit(), count: panels * 16 * n)
                let found = hits.withUnsafeMutableBufferPointer { h in
                    portable ? ck_ip_scan16_portable(db, n, d, packed, panels, thr, h.baseAddress!)
                             : ck_ip_scan16(db, n, d, packed, panels, thr, h.baseAddress!)
                }
                var got = Set<Int>()
                for h in hits[0..<found] {
                    XCTAssertTrue(h.query >= 0 && Int(h.query) < q && h.row >= 0 && Int(h.row) < n, "hit in range")
                    guard h.query >= 0, Int(h.query) < q, h.row >= 0, Int(h.row) < n else { continue }
                    XCTAssertTrue(got.insert(Int(h.query) * n + Int(h.row)).inserted, "each pair once")
                    let diff = abs(h.score - Float(truth[Int(h.query)][Int(h.row)]))
                    worst = max(worst, diff)
                    XCTAssertLessThan(diff, 1e-4, "score of (\(h.query), \(h.row)) n=\(n) d=\(d)")
                }
                for i in 0..<q {
                    for r in 0..<n where abs(truth[i][r] - Double(thr[i])) > 1e-4 {
                        XCTAssertEqual(got.contains(i * n + r), truth[i][r] >= Double(thr[i]),
                                       "pair (\(i), \(r)) n=\(n) d=\(d) q=\(q) portable=\(portable)")
                        checked += 1
                    }
                }
            }
        }
        print("ck_ip_scan16 vs double: \(checked) pairs decided the same, max score difference \(worst) (tolerance 1e-4)")
    }
}

/// `ck_dot_gather` (the HNSW walk's neighbour scoring) gives exactly `ck_dot` of each gathered
/// row, for every count up to a full layer-0 list, repeated and out-of-order slots included.
final class DotGatherTests: XCTestCase {
    func testGatherEqualsDotOfEachRow() {
        var rng = SplitMix64(seed: 23)
        for d in [1, 37, 384] {
            let n = 100
            let base = (0..<(n * d)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let q = (0..<d).map { _ in rng.nextUnitFloat() * 2 - 1 }
            for count in [0, 1, 2, 3, 7, 32] {
                let slots = (0..<count).map { _ in UInt32(rng.next() % UInt64(n)) }
                var out = [Float](repeating: .nan, count: max(count, 1))
                base.withUnsafeBufferPointer { b in
                    ck_dot_gather(q, b.baseAddress!, d, slots, count, &out)
                }
                for (i, s) in slots.enumerated() {
                    let row = Array(base[(Int(s) * d)..<((Int(s) + 1) * d)])
                    XCTAssertEqual(out[i], ck_dot(q, row, d), "d=\(d) count=\(count) i=\(i)")
                }
            }
        }
    }
}
