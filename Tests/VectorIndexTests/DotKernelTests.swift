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
