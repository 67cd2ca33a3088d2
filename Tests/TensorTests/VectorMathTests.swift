import Foundation
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
