import Foundation
import XCTest
import TestSupport
@testable import LLM

/// Dequantization against `Tests/Fixtures/golden/gguf_dequant_golden.json` (gguf Python package) and the
/// random-block fixtures in `DequantFixtures.swift`.
final class DequantTests: XCTestCase {
    func testBlockLayouts() {
        QuantBlocks.verifyLayouts()  // traps on a mismatch
        XCTAssertEqual(MemoryLayout<BlockQ4_K>.size, GGMLType.q4_K.blockBytes)
        XCTAssertEqual(MemoryLayout<BlockQ6_K>.size, 210)
        for type in GGMLType.allCases where type.canDequantize {
            XCTAssertEqual(type.rowBytes(elements: type.blockElements * 3), type.blockBytes * 3, "\(type)")
        }
    }

    func testHalfToFloatMatchesFloat16Everywhere() {
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let actual = halfToFloat(bits)
            if expected.isNaN {
                XCTAssertTrue(actual.isNaN)
            } else {
                XCTAssertEqual(actual.bitPattern, expected.bitPattern, "half 0x\(String(bits, radix: 16))")
            }
        }
    }

    /// First two blocks of each golden tensor: bit-exact.
    func testGoldenBlocks() throws {
        let golden = try TestPaths.json("gguf_dequant_golden.json")
        let items = try XCTUnwrap(golden["items"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(items.count, 5)
        for item in items {
            let typeName = try XCTUnwrap(item["type"] as? String)
            let type = try XCTUnwrap(GGMLType.allCases.first { "\($0)" == typeName }, typeName)
            XCTAssertEqual(item["block_bytes"] as? Int, type.blockBytes, typeName)
            XCTAssertEqual(item["block_elements"] as? Int, type.blockElements, typeName)
            let raw = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(item["first_2_blocks_b64"] as? String)))
            let expected = try XCTUnwrap(item["first_2_blocks_dequant"] as? [Double]).map { Float($0) }
            let actual = try dequantize(type, raw, count: expected.count)
            let (maxAbs, maxRel) = differences(actual, expected)
            print("dequant golden \(typeName) (\(item["tensor"] ?? "")): first 2 blocks max |diff| \(maxAbs), max rel \(maxRel)")
            XCTAssertLessThanOrEqual(maxRel, 1e-6, typeName)
            XCTAssertEqual(actual.map(\.bitPattern), expected.map(\.bitPattern), "\(typeName) not bit-exact")
        }
    }

    /// Sum and sum of squares of whole tensors of every model file the golden file names (set-up
    /// downloads them all; a missing one fails).
    func testGoldenTensorSums() throws {
        let golden = try TestPaths.json("gguf_dequant_golden.json")
        let items = try XCTUnwrap(golden["items"] as? [[String: Any]])
        var checked = 0
        for item in items {
            let fileName = try XCTUnwrap(item["file"] as? String)
            let file = fileName == TestPaths.smolLM2.lastPathComponent ? try SharedModel.open()
                                                                        : try GGUFFile(path: try RepositoryFiles.model(fileName))
            let tensor = try file.tensor(named: try XCTUnwrap(item["tensor"] as? String))
            XCTAssertEqual("\(tensor.type)", item["type"] as? String)
            XCTAssertEqual(tensor.info.dims, item["shape_ne"] as? [Int])
            XCTAssertEqual(tensor.info.elementCount, item["tensor_elements"] as? Int)
            let raw = Data(base64Encoded: try XCTUnwrap(item["first_2_blocks_b64"] as? String))!
            XCTAssertEqual(Data(tensor.bytes[0..<raw.count]), raw, "first blocks' raw bytes")

            let start = Date()
            let values = try tensor.dequantized()
            let seconds = Date().timeIntervalSince(start)
            var sum = 0.0, sumsq = 0.0
            for v in values {
                sum += Double(v)
                sumsq += Double(v) * Double(v)
            }
            let expectedSum = try XCTUnwrap(item["tensor_sum"] as? Double)
            let expectedSumsq = try XCTUnwrap(item["tensor_sumsq"] as? Double)
            let relSum = abs(sum - expectedSum) / max(abs(expectedSum), 1e-12)
            let relSumsq = abs(sumsq - expectedSumsq) / expectedSumsq
            print(String(format: "dequant golden %@ %@: sum rel diff %.3g, sumsq rel diff %.3g, %.1f M values/s",
                         tensor.name, "\(tensor.type)", relSum, relSumsq, Double(values.count) / seconds / 1e6))
            XCTAssertLessThanOrEqual(relSum, 1e-6, tensor.name)
            XCTAssertLessThanOrEqual(relSumsq, 1e-6, tensor.name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 2, "at least the SmolLM2 tensors are checked")
    }

    /// Random blocks of all dequantizable types against the gguf Python package, bit-exact.
    func testRandomBlockFixtures() throws {
        var covered = Set<String>()
        for item in DequantFixtures.items {
            let type = try XCTUnwrap(GGMLType.allCases.first { "\($0)" == item.type }, item.type)
            let raw = try XCTUnwrap(Data(base64Encoded: item.base64))
            let actual = try dequantize(type, raw, count: item.bits.count)
            let expected = item.bits.map(Float.init(bitPattern:))
            let (maxAbs, _) = differences(actual, expected)
            print("dequant fixture \(item.type): \(item.bits.count) values, max |diff| \(maxAbs)")
            XCTAssertEqual(actual.map(\.bitPattern), item.bits, "\(item.type) not bit-exact")
            covered.insert(item.type)
        }
        let all = Set(GGMLType.allCases.filter { $0.canDequantize && $0 != .f32 }.map { "\($0)" })
        XCTAssertEqual(covered, all)
    }

    /// Row-at-a-time dequantization agrees with whole-tensor dequantization, and sizes are checked.
    func testRowAPIAndErrors() throws {
        let file = try SharedModel.open()
        let tensor = try file.tensor(named: "blk.0.ffn_down.weight")  // Q4_1, dims [1536, 576]
        XCTAssertEqual(tensor.info.rowLength, 1536)
        XCTAssertEqual(tensor.info.rowCount, 576)
        XCTAssertEqual(tensor.info.rowBytes, 1536 / 32 * 20)
        let all = try tensor.dequantized()
        var row = [Float](repeating: 0, count: 1536)
        try row.withUnsafeMutableBufferPointer { try tensor.dequantizeRow(575, into: $0) }
        XCTAssertEqual(row, Array(all[(575 * 1536)...]))

        XCTAssertThrowsError(try row.withUnsafeMutableBufferPointer { try tensor.dequantizeRow(576, into: $0) }) {
            XCTAssertEqual($0 as? GGUFError, .rowOutOfRange(tensor: tensor.name, rows: 576..<577, rowCount: 576))
        }
        var short = [Float](repeating: 0, count: 100)
        XCTAssertThrowsError(try short.withUnsafeMutableBufferPointer { try tensor.dequantizeRow(0, into: $0) }) {
            XCTAssertEqual($0 as? GGUFError, .bufferSizeMismatch(tensor: tensor.name, expectedElements: 1536, actualElements: 100))
        }
        let raw = [UInt8](repeating: 0, count: GGMLType.q3_K.blockBytes)
        var out = [Float](repeating: 0, count: 256)
        XCTAssertThrowsError(try raw.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { try Dequantize.dequantize(.q3_K, from: src, into: $0, name: "x") }
        }) {
            XCTAssertEqual($0 as? GGUFError, .unsupportedTensorType(tensor: "x", type: "Q3_K"))
            print("unsupported type error: \($0.localizedDescription)")
        }
    }

    /// Throughput of the row kernels on the real Q8_0 and Q4_1 tensors (printed, not asserted).
    func testDequantThroughput() throws {
        let file = try SharedModel.open()
        for name in ["token_embd.weight", "blk.0.ffn_down.weight"] {
            let tensor = try file.tensor(named: name)
            var row = [Float](repeating: 0, count: tensor.info.rowLength)
            let rows = min(tensor.info.rowCount, 8192)
            let repeats = max(1, 8_000_000 / (rows * tensor.info.rowLength))
            let start = Date()
            try row.withUnsafeMutableBufferPointer { buffer in
                for _ in 0..<repeats {
                    for r in 0..<rows { try tensor.dequantizeRow(r, into: buffer) }
                }
            }
            let seconds = Date().timeIntervalSince(start)
            let values = Double(repeats * rows * tensor.info.rowLength)
            print(String(format: "dequant throughput %@ (%@): %.0f M values/s, %.2f GB/s of quantized bytes", name,
                         "\(tensor.type)", values / seconds / 1e6,
                         Double(repeats * rows * tensor.info.rowBytes) / seconds / 1e9))
        }
        // Every kernel on 1 Mi synthetic values (random bytes; 256 rows of 4096), 4 passes.
        let rowLength = 4096, rows = 256
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let words = (0..<(rowLength * rows * 4 / 8)).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
        var out = [Float](repeating: 0, count: rowLength)
        for type in GGMLType.allCases where type.canDequantize {
            let rowBytes = type.rowBytes(elements: rowLength)!
            let start = Date()
            words.withUnsafeBytes { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for _ in 0..<4 {
                        for r in 0..<rows {
                            Dequantize.dequantizeUnchecked(type, from: src.baseAddress! + r * rowBytes, count: rowLength,
                                                           into: dst.baseAddress!)
                        }
                    }
                }
            }
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "dequant throughput %@ (synthetic): %.0f M values/s", "\(type)",
                         Double(4 * rows * rowLength) / seconds / 1e6))
        }
    }

    // MARK: Helpers

    private func dequantize(_ type: GGMLType, _ raw: Data, count: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        try raw.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { try Dequantize.dequantize(type, from: src, into: $0) }
        }
        return out
    }

    private func differences(_ a: [Float], _ b: [Float]) -> (maxAbs: Float, maxRel: Float) {
        var maxAbs: Float = 0, maxRel: Float = 0
        for (x, y) in zip(a, b) where !(x.isInfinite && x == y) {
            let d = abs(x - y)
            maxAbs = max(maxAbs, d)
            maxRel = max(maxRel, d / max(abs(y), 1e-30))
        }
        return (maxAbs, maxRel)
    }
}
