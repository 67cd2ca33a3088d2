import XCTest
@testable import Tensor

final class HalfPrecisionTests: XCTestCase {
    /// Every fp16 bit pattern converts exactly as Swift's `Float16` does.
    func testFloat16ExhaustiveMatchesSwift() {
        let all = (0...0xFFFF).map { UInt16($0) }
        let converted = HalfPrecision.float16ToFloat(all)
        var mismatches = 0
        for (bits, f) in zip(all, converted) {
            let expected = Float(Float16(bitPattern: bits))
            if expected.isNaN {
                if !f.isNaN { mismatches += 1 }
            } else if f.bitPattern != expected.bitPattern {
                if mismatches < 5 { print("fp16 0x\(String(bits, radix: 16)): got \(f), expected \(expected)") }
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testBFloat16IsHighHalfOfFloat() {
        let values: [Float] = [0, -0, 1, -2.5, 3.140625, .infinity, -.infinity, Float.leastNormalMagnitude / 4, 65504, 3.4e38]
        let bits = values.map { UInt16($0.bitPattern >> 16) }
        let back = HalfPrecision.bfloat16ToFloat(bits + bits)  // 20 values: SIMD and tail paths
        for (v, b) in zip(values + values, back) {
            XCTAssertEqual(b.bitPattern, v.bitPattern & 0xFFFF_0000)
        }
        XCTAssertTrue(HalfPrecision.bfloat16ToFloat([0x7FC0])[0].isNaN)
    }

    func testRoundTripsFromFloat() {
        let values: [Float] = [0, 1, -1, 0.1, 1000.5, 65504, 70000, 1e-6, -3.3333, .nan]
        var h = [UInt16](repeating: 0, count: values.count), b = h
        HalfPrecision.floatToFloat16(values, &h, count: values.count)
        HalfPrecision.floatToBFloat16(values, &b, count: values.count)
        let hf = HalfPrecision.float16ToFloat(h), bf = HalfPrecision.bfloat16ToFloat(b)
        for (i, v) in values.enumerated() {
            if v.isNaN { XCTAssertTrue(hf[i].isNaN && bf[i].isNaN); continue }
            XCTAssertEqual(hf[i], Float(Float16(v)))
            XCTAssertEqual(bf[i], v, accuracy: abs(v) / 128)  // 8 significant bits
        }
        // Round to nearest even: 1 + 2^-8 is halfway between two bf16 values and rounds down to 1.
        var tie = UInt16(0)
        HalfPrecision.floatToBFloat16([1 + 0x1p-8], &tie, count: 1)
        XCTAssertEqual(tie, 0x3F80)
    }
}
