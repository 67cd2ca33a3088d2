import Foundation
import TestSupport
import XCTest
@testable import LLM

/// Allocation bombs: files of about 1 KB that claim a 10^12-element tensor, a 2^40-byte string or
/// array, or a data offset far past the end. Each must be refused with a `GGUFError` (or a
/// `ModelError` for the hyper-parameters) naming what and where, in well under a second, without
/// raising the peak RSS by more than 64 MB. Each case prints its time, the RSS and the message.
final class GGUFBombTests: XCTestCase {
    private func valid() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", .string("llama"))
        b.addTensor("w", dims: [32, 2], type: .q8_0, bytes: [UInt8](repeating: 0, count: 68))
        return b
    }

    /// Writes `builder`'s bytes, opens them, and checks the refusal.
    private func refuse(_ label: String, _ builder: GGUFBuilder, line: UInt = #line,
                        _ check: (GGUFError) -> Bool) throws {
        let dir = try TemporaryDirectory(self)
        let url = dir.file("\(label).gguf")
        let bytes = builder.bytes()
        XCTAssertLessThan(bytes.count, 2048, "\(label): the bomb is small", line: line)
        try Data(bytes).write(to: url)
        let error = assertBombRefused("gguf \(label) (\(bytes.count) bytes)", line: line) {
            _ = try GGUFFile(path: url.path)
        }
        guard let gguf = error as? GGUFError else { return XCTFail("\(label): not a GGUFError: \(String(describing: error))", line: line) }
        XCTAssertTrue(check(gguf), "\(label): unexpected \(gguf)", line: line)
        XCTAssertTrue(gguf.localizedDescription.hasPrefix(url.path), "\(label): the message names the file", line: line)
    }

    func testTensorOfATrillionElements() throws {
        var b = valid()
        b.tensors[0].dims = [1_000_000, 1_000_000]  // 10^12 Q8_0 elements: 1.06 TB
        try refuse("tensor-1e12", b) {
            if case let .tensorDataOutOfBounds(_, "w", 0, byteCount, _) = $0 { byteCount == 1_062_500_000_000 } else { false }
        }
        b = valid()
        b.tensors[0].type = GGMLType.f32.rawValue
        b.tensors[0].dims = [1_000_000, 1_000_000, 1_000_000, 1_000_000]  // 10^24: overflows Int
        try refuse("tensor-1e24", b) { if case .elementCountOverflow(_, "w", _) = $0 { true } else { false } }
    }

    func testStringOf2To40Bytes() throws {
        var b = valid()
        b.addRaw("general.name", GGUFBuilder.le(GGUFValueType.string.rawValue) + GGUFBuilder.le(UInt64(1) << 40) + Array("x".utf8))
        try refuse("string-2^40", b) { if case .truncated(_, "value of 'general.name'", _, 1 << 40, _) = $0 { true } else { false } }
        b = valid()  // a key, and a tensor name, of 2^40 bytes
        b.entries.append(GGUFBuilder.le(UInt64(1) << 40) + Array("k".utf8))
        try refuse("key-2^40", b) { if case .truncated(_, "key of metadata entry 1", _, 1 << 40, _) = $0 { true } else { false } }
        b = valid()
        b.rawTail = GGUFBuilder.le(UInt64(1) << 40) + [UInt8](repeating: 0x41, count: 64)
        b.tensorCountOverride = 2
        try refuse("tensor-name-2^40", b) { if case .truncated(_, "name of tensor 1", _, 1 << 40, _) = $0 { true } else { false } }
    }

    func testArraysOf2To40Elements() throws {
        for element: GGUFValueType in [.uint8, .float32, .uint64, .string, .array] {
            var b = valid()
            b.addRaw("tokenizer.ggml.tokens", GGUFBuilder.le(GGUFValueType.array.rawValue) + GGUFBuilder.le(element.rawValue)
                     + GGUFBuilder.le(UInt64(1) << 40))
            try refuse("array-\(element)-2^40", b) {
                if case .countTooLarge(_, "array 'tokenizer.ggml.tokens' element", 1 << 40, _) = $0 { true } else { false }
            }
        }
        // Every element of a string array claims 2^40 bytes.
        var b = valid()
        b.addRaw("tokenizer.ggml.merges", GGUFBuilder.le(GGUFValueType.array.rawValue) + GGUFBuilder.le(GGUFValueType.string.rawValue)
                 + GGUFBuilder.le(UInt64(4)) + (0..<4).flatMap { _ in GGUFBuilder.le(UInt64(1) << 40) })
        try refuse("array-of-2^40-strings", b) {
            if case .truncated(_, "element of array 'tokenizer.ggml.merges'", _, 1 << 40, _) = $0 { true } else { false }
        }
    }

    func testCountsAndOffsets() throws {
        var b = valid()
        b.tensorCountOverride = 1 << 40
        try refuse("tensor-count-2^40", b) { if case .countTooLarge(_, "tensor", 1 << 40, _) = $0 { true } else { false } }
        b = valid()
        b.kvCountOverride = 1 << 40
        try refuse("kv-count-2^40", b) { if case .countTooLarge(_, "metadata key/value", 1 << 40, _) = $0 { true } else { false } }
        b = valid()
        b.tensors[0].offset = 1 << 40
        try refuse("data-offset-2^40", b) { if case .tensorDataOutOfBounds(_, "w", 1 << 40, 68, _) = $0 { true } else { false } }
        b = valid()
        b.tensors[0].offset = UInt64.max & ~31
        try refuse("data-offset-max", b) { if case .tensorDataOutOfBounds(_, "w", _, 68, _) = $0 { true } else { false } }
        b = valid()
        b.add("general.alignment", .uint32(1 << 31))  // data section claimed 2 GB past the header
        try refuse("alignment-2^31", b) { if case .truncated(_, "padding before the data section", _, _, _) = $0 { true } else { false } }
    }

    /// The file is well-formed but its hyper-parameters claim 10^12 layers: the configuration must
    /// refuse it before sizing its per-layer arrays.
    func testTrillionLayers() throws {
        var b = GGUFBuilder()
        b.add("general.architecture", .string("llama"))
        for (key, value) in [("embedding_length", 64), ("block_count", 1_000_000_000_000), ("feed_forward_length", 128),
                             ("attention.head_count", 4), ("context_length", 1 << 40)] {
            b.add("llama.\(key)", .uint64(UInt64(value)))
        }
        b.add("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        b.add("tokenizer.ggml.tokens", .array(.string(["a", "b"])))
        b.addTensor("blk.0.attn_norm.weight", dims: [64], type: .f32, bytes: [UInt8](repeating: 0, count: 256))
        let dir = try TemporaryDirectory(self)
        let url = dir.file("layers.gguf")
        try b.write(to: url)
        let file = try GGUFFile(path: url.path)
        let error = assertBombRefused("gguf block_count 10^12") { _ = try ModelConfig.read(file) }
        XCTAssertEqual(error as? ModelError, .invalidMetadata(path: url.path, key: "llama.block_count", value: "1000000000000",
                                                              expected: "at most the file's 1 tensors (one or more per layer)"))
    }
}
