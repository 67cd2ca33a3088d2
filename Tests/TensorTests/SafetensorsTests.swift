import Foundation
import XCTest
@testable import Tensor

/// Valid and hostile safetensors files built byte by byte in a fresh temp directory, plus the
/// real MiniLM checkpoint.
final class SafetensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: Builders

    /// Writes `[u64 header length][header][data]`; `declaredLength` overrides the length field.
    func write(_ name: String, header: String, data: [UInt8], declaredLength: UInt64? = nil) throws -> String {
        var bytes = [UInt8]()
        let h = Array(header.utf8)
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { bytes += $0 }
        bytes += h + data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func bytes(of floats: [Float]) -> [UInt8] { floats.withUnsafeBytes { Array($0) } }
    func bytes(of halves: [UInt16]) -> [UInt8] { halves.withUnsafeBytes { Array($0) } }

    /// Asserts that opening `path` throws exactly `expected`.
    func assertOpenThrows(_ path: String, _ expected: SafetensorsError, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), line: line) { error in
            XCTAssertEqual(error as? SafetensorsError, expected, line: line)
            print("ok:", (error as? LocalizedError)?.errorDescription ?? "\(error)")
        }
    }

    // MARK: Valid files

    func testReadsF32F16BF16AndRejectsIntegerConversion() throws {
        let f32: [Float] = [1, 2, 3, 4, 5, 6]
        let f16: [UInt16] = [Float16(0.5).bitPattern, Float16(-2).bitPattern, Float16(65504).bitPattern]
        let bf16: [UInt16] = [UInt16(Float(1.5).bitPattern >> 16), UInt16(Float(-3).bitPattern >> 16)]
        let i64: [Int64] = [7, 8]
        var data = bytes(of: f32)                     // [0, 24)
        data += bytes(of: f16)                        // [24, 30)
        data += bytes(of: bf16)                       // [30, 34)
        data += i64.withUnsafeBytes { Array($0) }     // [34, 50): unaligned, allowed
        let header = """
        {"__metadata__":{"format":"pt"},
         "a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},
         "h":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},
         "b":{"dtype":"BF16","shape":[2,1],"data_offsets":[30,34]},
         "i":{"dtype":"I64","shape":[2],"data_offsets":[34,50]},
         "empty":{"dtype":"F32","shape":[0,4],"data_offsets":[50,50]}}
        """
        let path = try write("valid.safetensors", header: header, data: data)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.names, ["a", "b", "empty", "h", "i"])
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(try file.floats("a"), FloatTensor(shape: [2, 3], values: f32))
        XCTAssertEqual(try file.floats("h").values, [0.5, -2, 65504])
        XCTAssertEqual(try file.floats("b"), FloatTensor(shape: [2, 1], values: [1.5, -3]))
        XCTAssertEqual(try file.floats("empty").values, [])
        XCTAssertEqual(try file.floats("a", shape: [2, 3]), f32)
        XCTAssertEqual(try file.withRawBytes(of: "i") { $0.loadUnaligned(fromByteOffset: 8, as: Int64.self) }, 8)
        XCTAssertThrowsError(try file.floats("i")) {
            XCTAssertEqual($0 as? SafetensorsError,
                           .unsupportedDType(file: path, tensor: "i", dtype: "I64", supported: ["F32", "F16", "BF16"]))
        }
        XCTAssertThrowsError(try file.floats("a", shape: [3, 2])) {
            XCTAssertEqual($0 as? SafetensorsError, .shapeMismatch(file: path, tensor: "a", expected: [3, 2], actual: [2, 3]))
        }
        XCTAssertThrowsError(try file.floats("nope")) {
            XCTAssertEqual($0 as? SafetensorsError, .missingTensor(file: path, tensor: "nope"))
        }
    }

    // MARK: Hostile files

    func testMissingFile() {
        let path = dir.appendingPathComponent("absent.safetensors").path
        assertOpenThrows(path, .cannotOpen(file: path, reason: "No such file or directory"))
    }

    func testTruncatedHeaderLength() throws {
        let url = dir.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: url)
        assertOpenThrows(url.path, .truncatedHeader(file: url.path, fileBytes: 3))
        try Data().write(to: url)
        assertOpenThrows(url.path, .truncatedHeader(file: url.path, fileBytes: 0))
    }

    func testHeaderLongerThanFile() throws {
        let path = try write("past.safetensors", header: "{}", data: [], declaredLength: 1000)
        assertOpenThrows(path, .headerPastEnd(file: path, headerBytes: 1000, available: 2))
    }

    func testHeaderLengthAboveLimit() throws {
        let path = try write("huge.safetensors", header: "{}", data: [], declaredLength: UInt64.max)
        assertOpenThrows(path, .headerTooLarge(file: path, headerBytes: UInt64.max, limit: SafetensorsFile.defaultMaxHeaderBytes))
    }

    func testTruncatedJSON() throws {
        // The declared length cuts the JSON short: the rest lands in the data section.
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let path = try write("cut.safetensors", header: header, data: [], declaredLength: 20)
        XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
            guard case let .malformedHeader(file, reason)? = error as? SafetensorsError else {
                return XCTFail("expected malformedHeader, got \(error)")
            }
            XCTAssertEqual(file, path)
            print("ok: truncated JSON:", reason)
        }
    }

    func testBadJSON() throws {
        for (i, header) in ["not json", "[1,2,3]", #"{"a": 5}"#, "\u{0}\u{0}"].enumerated() {
            let path = try write("bad\(i).safetensors", header: header, data: [])
            XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
                switch error as? SafetensorsError {
                case .malformedHeader(path, _)?, .malformedEntry(path, "a", _)?:
                    print("ok:", (error as? LocalizedError)?.errorDescription ?? "")
                default: XCTFail("header \(header.debugDescription): unexpected \(error)")
                }
            }
        }
    }

    func testMissingField() throws {
        let path = try write("nofield.safetensors", header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0])
        assertOpenThrows(path, .malformedEntry(file: path, tensor: "w", reason: "missing field 'data_offsets'"))
    }

    func testUnknownDType() throws {
        let path = try write("dtype.safetensors", header: #"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#,
                             data: [UInt8](repeating: 0, count: 16))
        assertOpenThrows(path, .unknownDType(file: path, tensor: "w", dtype: "F128"))
    }

    func testOffsetsPastEnd() throws {
        let path = try write("offsets.safetensors", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
                             data: [UInt8](repeating: 0, count: 16))
        assertOpenThrows(path, .offsetsOutOfBounds(file: path, tensor: "w", begin: 8, end: 24, dataBytes: 16))
    }

    func testReversedAndNegativeOffsets() throws {
        for (i, offsets) in ["[8,4]", "[-4,4]", "[0]"].enumerated() {
            let path = try write("rev\(i).safetensors", header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":\#(offsets)}}"#,
                                 data: [UInt8](repeating: 0, count: 16))
            XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
                guard case .malformedEntry(path, "w", _)? = error as? SafetensorsError else {
                    return XCTFail("offsets \(offsets): unexpected \(error)")
                }
            }
        }
    }

    func testShapeLengthMismatch() throws {
        let path = try write("mismatch.safetensors", header: #"{"w":{"dtype":"F16","shape":[3,3],"data_offsets":[0,16]}}"#,
                             data: [UInt8](repeating: 0, count: 16))
        assertOpenThrows(path, .byteLengthMismatch(file: path, tensor: "w", shape: [3, 3], dtype: "F16",
                                                   expectedBytes: 18, actualBytes: 16))
    }

    func testShapeOverflowAndNegativeDimension() throws {
        let big = #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#
        let p1 = try write("overflow.safetensors", header: big, data: [UInt8](repeating: 0, count: 16))
        assertOpenThrows(p1, .malformedEntry(file: p1, tensor: "w", reason: "shape [4611686018427387904, 4] overflows"))
        let p2 = try write("negative.safetensors", header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                           data: [0, 0, 0, 0])
        assertOpenThrows(p2, .malformedEntry(file: p2, tensor: "w", reason: "negative dimension in shape [-1]"))
    }

    func testOverlappingTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let path = try write("overlap.safetensors", header: header, data: [UInt8](repeating: 0, count: 12))
        assertOpenThrows(path, .overlappingTensors(file: path, tensor: "b", other: "a"))
    }

    // MARK: The real checkpoint

    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testReadsMiniLMCheckpoint() throws {
        let path = Self.repoRoot.appendingPathComponent("models/all-MiniLM-L6-v2/model.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else {
            return XCTFail("missing \(path): run scripts/setup")  // a missing model must not pass silently
        }
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.entries.count, 104)  // 6 embedding tensors, 16 per layer × 6, 2 pooler
        let words = try file.floats("embeddings.word_embeddings.weight")
        XCTAssertEqual(words.shape, [30522, 384])
        XCTAssertTrue(words.values.allSatisfy(\.isFinite))
        let ln = try file.floats("encoder.layer.5.output.LayerNorm.weight", shape: [384])
        XCTAssertEqual(ln.count, 384)
        XCTAssertEqual(try file.entry("embeddings.position_ids").dtype, .I64)
    }
}
