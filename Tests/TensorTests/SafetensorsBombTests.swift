import Foundation
import TestSupport
import XCTest
@testable import Tensor

/// Allocation bombs: safetensors files of a few hundred bytes that claim a 2^40-byte header, a
/// 10^12-element tensor or data far past the end. Each is refused with a `SafetensorsError` naming
/// the file and tensor, without raising the peak RSS by more than 64 MB (figures printed).
final class SafetensorsBombTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws { dir = try makeTemporaryDirectory("safetensors-bomb") }

    private func write(_ name: String, header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) throws -> String {
        var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(header.utf8.count)).littleEndian) { Array($0) }
        bytes += Array(header.utf8) + data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func refuse(_ path: String, _ expected: SafetensorsError, line: UInt = #line) {
        let error = assertBombRefused("safetensors \(URL(fileURLWithPath: path).lastPathComponent)", line: line) {
            _ = try SafetensorsFile(path: path)
        }
        XCTAssertEqual(error as? SafetensorsError, expected, line: line)
    }

    func testHeaderLengthOf2To40() throws {
        let path = try write("header-2^40.safetensors", header: "{}", declaredLength: 1 << 40)
        refuse(path, .headerTooLarge(file: path, headerBytes: 1 << 40, limit: SafetensorsFile.defaultMaxHeaderBytes))
        // Under the limit but past the end of the file.
        let past = try write("header-99MB.safetensors", header: "{}", declaredLength: 99_000_000)
        refuse(past, .headerPastEnd(file: past, headerBytes: 99_000_000, available: 2))
    }

    func testTensorOfATrillionElements() throws {
        // The shape's byte length matches its offsets, but they pass the 16-byte data section.
        let path = try write("tensor-1e12.safetensors",
                             header: #"{"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}"#,
                             data: [UInt8](repeating: 0, count: 16))
        refuse(path, .offsetsOutOfBounds(file: path, tensor: "w", begin: 0, end: 4_000_000_000_000, dataBytes: 16))
        // The offsets fit the data; the shape claims 10^12 elements.
        let shape = try write("shape-1e12.safetensors",
                              header: #"{"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,16]}}"#,
                              data: [UInt8](repeating: 0, count: 16))
        refuse(shape, .byteLengthMismatch(file: shape, tensor: "w", shape: [1_000_000, 1_000_000], dtype: "F32",
                                          expectedBytes: 4_000_000_000_000, actualBytes: 16))
        // A zero dimension first hides an overflowing product from a naive count.
        let zero = try write("shape-0xhuge.safetensors",
                             header: #"{"w":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,16]}}"#,
                             data: [UInt8](repeating: 0, count: 16))
        let error = assertBombRefused("safetensors shape-0xhuge") { _ = try SafetensorsFile(path: zero) }
        XCTAssertEqual(error as? SafetensorsError, .byteLengthMismatch(file: zero, tensor: "w", shape: [0, 1 << 62, 1 << 62],
                                                                      dtype: "F32", expectedBytes: 0, actualBytes: 16))
    }
}
