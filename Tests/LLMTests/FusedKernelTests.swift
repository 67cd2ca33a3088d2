import CKernels
import XCTest
@testable import LLM

/// The fused float decode kernels (`QuantMatVec.multiply` with `integer: false`: the AVX2 C
/// kernels of `ck_qdot_rows`, or the Swift ones on CPUs without AVX2) for every quantized type
/// against a float64 dot product of the same blocks dequantized by `Dequantize`. Blocks are
/// random bytes with realistic fp16 scales, so every bit of every field is exercised.
/// Tolerance: 2e-5 of the largest |output| (float32 rounding over K = 768); max diffs printed.
final class FusedKernelTests: XCTestCase {
    /// fp16 scale fields per type: (byte offset in the block, magnitude).
    private static let scaleFields: [GGMLType: [(Int, Float)]] = [
        .q4_0: [(0, 0.02)], .q4_1: [(0, 0.02), (2, 0.1)], .q5_0: [(0, 0.01)], .q5_1: [(0, 0.01), (2, 0.1)],
        .q8_0: [(0, 0.002)], .q4_K: [(0, 0.002), (2, 0.003)], .q5_K: [(0, 0.001), (2, 0.003)], .q6_K: [(208, 0.0005)],
    ]

    func testEveryQuantizedTypeMatchesFloat64() throws {
        print("AVX2 C kernels on this CPU: \(QuantDot.usesC(.q4_1))")
        try check(Self.scaleFields.keys, integer: false, tolerance: 2e-5)
    }

    /// The int16-activation kernels (`integer: true`; AVX2 `ck_qdot_i16_rows` or the 128-bit Swift
    /// ones): activations rounded to 1/32767 of their block's largest value, so 5e-5 of the output.
    func testIntegerKernelsMatchFloat64() throws {
        try check(Self.scaleFields.keys.filter { QuantIntDot.supports($0) }, integer: true, tolerance: 5e-5)
    }

    private func check(_ types: some Collection<GGMLType>, integer: Bool, tolerance: Float) throws {
        var rng = SystemRandomNumberGenerator()
        let rows = 37, k = 768
        for type in types.sorted(by: { $0.rawValue < $1.rawValue }) {
            let fields = Self.scaleFields[type]!
            let blockBytes = type.blockBytes, blocks = k / type.blockElements
            var bytes = (0..<(rows * blocks * blockBytes)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for b in 0..<(rows * blocks) {
                for (offset, magnitude) in fields {
                    let h = Float16(Float.random(in: -magnitude...magnitude, using: &rng)).bitPattern
                    bytes[b * blockBytes + offset] = UInt8(h & 0xFF)
                    bytes[b * blockBytes + offset + 1] = UInt8(h >> 8)
                }
            }
            let t = integer ? 6 : 3  // 6: a tile of 4 vectors and one of 2
            let x = (0..<(t * k)).map { _ in Float.random(in: -2...2, using: &rng) }
            try bytes.withUnsafeBytes { raw in
                var reference = [Float](repeating: 0, count: rows * k)
                try reference.withUnsafeMutableBufferPointer { try Dequantize.dequantize(type, from: raw, into: $0) }
                let weight = LinearWeight(name: "\(type) test", type: type, rows: rows, columns: k, raw: raw.baseAddress!)
                let (maxDiff, maxRef) = multiplyAgainstFloat64(weight, reference: reference, x: x, t: t, integer: integer)
                print("\(type) \(integer ? "int16" : "float") kernel, \(rows) x \(k), T=\(t): max |diff| \(maxDiff) (max |out| \(maxRef))")
                XCTAssertLessThan(maxDiff, tolerance * max(1, maxRef), "\(type)")
            }
        }
    }

    /// On an AVX2 CPU every quantized type of our two models has a fused kernel, so decode never
    /// falls back to float32 weight copies.
    func testAVX2CoversTheModelTypes() throws {
        guard ck_qdot_supports(Int32(GGMLType.q4_1.rawValue)) != 0 else {
            throw XCTSkip("this CPU has no AVX2 + FMA + F16C; the Swift kernels run instead")
        }
        for type in [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K] {
            XCTAssertTrue(QuantDot.usesC(type) && QuantDot.isFused(type), "\(type)")
        }
        XCTAssertFalse(QuantDot.usesC(.f16))
        XCTAssertEqual(ck_qdot_rows(Int32(GGMLType.f16.rawValue), nil, 0, 0, nil, nil, 0, nil), 0)
    }
}
