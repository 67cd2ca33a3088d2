import Foundation
import CKernels
import XCTest
@testable import Tensor

final class VectorMathTests: XCTestCase {
    func testExpRelativeError() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.001 })
            let e = VectorMath.exp(v)
            for i in 0..<8 {
                let ref = Foundation.exp(Double(v[i]))
                worst = max(worst, abs(Double(e[i]) - ref) / ref)
            }
            x += 0.0173
        }
        print("exp max relative error \(worst)")
        XCTAssertLessThan(worst, 3e-7)
    }

    func testErfAbsoluteError() {
        var worst: Double = 0
        var x: Float = -6
        while x < 6 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0001 })
            let e = VectorMath.erf(v)
            for i in 0..<8 { worst = max(worst, abs(Double(e[i]) - Foundation.erf(Double(v[i])))) }
            x += 0.0011
        }
        print("erf max absolute error \(worst)")
        XCTAssertLessThan(worst, 5e-7)
    }

    func testSoftmax() {
        for count in [1, 7, 8, 19] {
            var row = (0..<count).map { Float($0) * 0.37 - 2 }
            let ref = row.map { Foundation.exp(Double($0)) }
            let total = ref.reduce(0, +)
            row.withUnsafeMutableBufferPointer { VectorMath.softmax($0.baseAddress!, count: count) }
            for i in 0..<count { XCTAssertEqual(Double(row[i]), ref[i] / total, accuracy: 1e-6) }
        }
        var big: [Float] = [1000, 1000, -1e30]  // stable: no overflow, tiny stays ~0
        big.withUnsafeMutableBufferPointer { VectorMath.softmax($0.baseAddress!, count: 3) }
        XCTAssertEqual(big[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(big[2], 0, accuracy: 1e-30)
    }

    func testSumAndDot() {
        let x = (0..<21).map { Float($0) }, y = [Float](repeating: 2, count: 21)
        XCTAssertEqual(VectorMath.sum(x, count: 21), 210)
        XCTAssertEqual(VectorMath.dot(x, y, count: 21), 420)
    }
}

/// The AVX2 softmax rows and erf GELU of CKernels (used by the BERT encoder) against float64
/// Foundation math, for lengths covering the 8-wide loop and every tail.
final class VectorKernelTests: XCTestCase {
    func testSoftmaxRowsAndGeluMatchFloat64() throws {
        try XCTSkipIf(ck_has_avx2_fma() == 0, "no AVX2 + FMA on this CPU: the Swift path runs instead")
        var state: UInt64 = 5
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 20001 - 10000) / 1000   // [-10, 10]
        }
        var worstSoftmax = 0.0, worstGelu = 0.0
        for n in [1, 3, 7, 8, 9, 16, 31, 206] {
            let rows = 3, ld = n + 5
            var x = (0..<(rows * ld)).map { _ in next() }
            let before = x
            XCTAssertEqual(ck_softmax_rows(&x, rows, n, ld), 1)
            for r in 0..<rows {
                let row = before[(r * ld)..<(r * ld + n)].map(Double.init)
                let m = row.max()!, z = row.reduce(0) { $0 + Foundation.exp($1 - m) }
                for j in 0..<n {
                    let err = abs(Double(x[r * ld + j]) - Foundation.exp(row[j] - m) / z)
                    worstSoftmax = max(worstSoftmax, err)
                    XCTAssertLessThan(err, 1e-6, "softmax n=\(n) row \(r) at \(j)")
                }
                for j in n..<ld { XCTAssertEqual(x[r * ld + j], before[r * ld + j], "softmax touched the gap") }
            }
            var g = (0..<n).map { _ in next() }
            let g0 = g
            XCTAssertEqual(ck_gelu_erf(&g, n), 1)
            for j in 0..<n {
                let v = Double(g0[j]), want = v / 2 * (1 + Foundation.erf(v / 2.0.squareRoot()))
                let err = abs(Double(g[j]) - want)
                worstGelu = max(worstGelu, err)
                XCTAssertLessThan(err, 1e-5 * max(1, abs(want)), "gelu n=\(n) at \(j) x=\(v)")
            }
        }
        print("CKernels softmax max abs error \(worstSoftmax) (tolerance 1e-6), GELU \(worstGelu) (tolerance 1e-5 relative)")
    }
}
