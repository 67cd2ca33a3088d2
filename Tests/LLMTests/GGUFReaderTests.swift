import Foundation
import XCTest
@testable import LLM

final class GGUFReaderTests: XCTestCase {
    // MARK: The real SmolLM2 file

    func testReadsSmolLM2() throws {
        let file = try SharedModel.open()
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.architecture, "llama")
        XCTAssertEqual(file.tensors.count, 272)
        XCTAssertEqual(file.metadata.keys.count, 33)
        XCTAssertEqual(file.alignment, 32)
        XCTAssertEqual(file.dataOffset % 32, 0)
        let m = file.metadata
        XCTAssertEqual(try m.int("llama.block_count"), 30)
        XCTAssertEqual(try m.int("llama.context_length"), 8192)
        XCTAssertEqual(try m.int("llama.embedding_length"), 576)
        XCTAssertEqual(try m.int("llama.feed_forward_length"), 1536)
        XCTAssertEqual(try m.int("llama.attention.head_count"), 9)
        XCTAssertEqual(try m.int("llama.attention.head_count_kv"), 3)
        XCTAssertEqual(try m.float("llama.rope.freq_base"), 100_000)
        XCTAssertEqual(try m.float("llama.attention.layer_norm_rms_epsilon"), 1e-5, accuracy: 1e-12)
        XCTAssertEqual(try m.string("general.name"), "Smollm2 135M 8k Lc100K Mix1 Ep2")
        XCTAssertEqual(try m.strings("general.languages"), ["en"])
        XCTAssertEqual(try m.bool("tokenizer.ggml.add_bos_token"), false)
        XCTAssertEqual(try m.string("tokenizer.ggml.pre"), "smollm")
        XCTAssertEqual(try m.strings("tokenizer.ggml.tokens").count, 49152)
        XCTAssertEqual(try m.ints("tokenizer.ggml.token_type").count, 49152)
        XCTAssertEqual(try m.strings("tokenizer.ggml.merges").count, 48900)
        XCTAssertTrue(try m.string("tokenizer.chat_template").contains("<|im_start|>"))

        let embedding = try file.tensorInfo(named: "token_embd.weight")
        XCTAssertEqual(embedding.type, .q8_0)
        XCTAssertEqual(embedding.dims, [576, 49152])
        XCTAssertEqual(embedding.byteCount, 576 / 32 * 34 * 49152)
        XCTAssertEqual(try file.tensorInfo(named: "blk.0.attn_norm.weight").type, .f32)
        XCTAssertEqual(Set(file.tensors.map(\.type)), [.f32, .q4_1, .q8_0])
        let norm = try file.tensor(named: "output_norm.weight").dequantized()
        XCTAssertEqual(norm.count, 576)
        XCTAssertTrue(norm.allSatisfy(\.isFinite))

        XCTAssertThrowsError(try m.string("llama.block_count")) {
            XCTAssertEqual($0 as? GGUFError, .metadataTypeMismatch(key: "llama.block_count", expected: "string", actual: "uint32"))
        }
        XCTAssertThrowsError(try m.int("no.such.key")) { XCTAssertEqual($0 as? GGUFError, .metadataKeyMissing(key: "no.such.key")) }
        XCTAssertThrowsError(try file.tensor(named: "nope")) { XCTAssertEqual($0 as? GGUFError, .tensorNotFound(name: "nope")) }
    }

    // MARK: Files we build

    func testBuiltFileWithEveryValueType() throws {
        let dir = try TemporaryDirectory(self)
        var b = GGUFBuilder()
        b.version = 2
        b.add("u8", .uint8(200)); b.add("i8", .int8(-5)); b.add("u16", .uint16(60000)); b.add("i16", .int16(-300))
        b.add("u32", .uint32(4_000_000_000)); b.add("i32", .int32(-7)); b.add("u64", .uint64(1 << 40))
        b.add("i64", .int64(-1 << 40)); b.add("f32", .float32(1.5)); b.add("f64", .float64(-2.25))
        b.add("yes", .bool(true)); b.add("s", .string("héllo 🧬"))
        b.add("strings", .array(.string(["a", "", "ç"])))
        b.add("ints", .array(.int16([-1, 2])))
        b.add("u64s", .array(.uint64([1, UInt64.max])))
        b.add("floats", .array(.float32([0.5, -1])))
        b.add("doubles", .array(.float64([0.25])))
        b.add("bools", .array(.bool([true, false])))
        b.add("nested", .array(.array([.uint8([1, 2]), .string([])])))
        b.add("empty", .array(.float64([])))
        b.add("huge", .uint64(UInt64.max))
        b.addTensor("a", dims: [4, 2], type: .f32, bytes: (0..<8).flatMap { GGUFBuilder.le(Float($0).bitPattern) })
        b.addTensor("b", dims: [32], type: .q8_0, bytes: GGUFBuilder.le(UInt16(0x3800)) + (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) })
        let url = dir.file("ok.gguf")
        try b.write(to: url)

        let file = try GGUFFile(path: url.path)
        let m = file.metadata
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(try m.int("u8"), 200)
        XCTAssertEqual(try m.int("i8"), -5)
        XCTAssertEqual(try m.int("u16"), 60000)
        XCTAssertEqual(try m.int("i16"), -300)
        XCTAssertEqual(try m.int("u32"), 4_000_000_000)
        XCTAssertEqual(try m.int("i32"), -7)
        XCTAssertEqual(try m.int("u64"), 1 << 40)
        XCTAssertEqual(try m.int("i64"), -1 << 40)
        XCTAssertEqual(try m.float("f32"), 1.5)
        XCTAssertEqual(try m.float("f64"), -2.25)
        XCTAssertEqual(try m.bool("yes"), true)
        XCTAssertEqual(try m.string("s"), "héllo 🧬")
        XCTAssertEqual(try m.strings("strings"), ["a", "", "ç"])
        XCTAssertEqual(try m.ints("ints"), [-1, 2])
        XCTAssertEqual(try m.floats("floats"), [0.5, -1])
        XCTAssertEqual(try m.floats("doubles"), [0.25])
        XCTAssertEqual(m["bools"], .array(.bool([true, false])))
        XCTAssertEqual(m["nested"], .array(.array([.uint8([1, 2]), .string([])])))
        XCTAssertEqual(m["nested"]?.typeDescription, "array<array>")
        XCTAssertEqual(try m.floats("empty"), [])
        XCTAssertThrowsError(try m.ints("u64s"), "uint64 above Int.max is not an Int")
        XCTAssertThrowsError(try m.int("huge"), "uint64 above Int.max is not an Int")
        XCTAssertThrowsError(try m.ints("strings"))
        XCTAssertEqual(m.keys.first, "u8")

        XCTAssertEqual(try file.tensor(named: "a").dequantized(), (0..<8).map(Float.init))
        XCTAssertEqual(try file.tensor(named: "a").info.rowCount, 2)
        XCTAssertEqual(try file.tensor(named: "b").dequantized(), (0..<32).map { Float($0 - 16) * 0.5 })
    }

    // MARK: Hostile files: each gives a clear error, never a crash or a huge allocation

    private func expectError(_ bytes: [UInt8], _ check: (GGUFError) -> Bool,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TemporaryDirectory(self)
        let url = dir.file("bad.gguf")
        try Data(bytes).write(to: url)
        do {
            _ = try GGUFFile(path: url.path)
            XCTFail("opened a broken file", file: file, line: line)
        } catch let error as GGUFError {
            print("hostile file -> \(error.localizedDescription)")
            XCTAssertTrue(check(error), "unexpected error \(error)", file: file, line: line)
            XCTAssertTrue(error.localizedDescription.contains(url.path) || error.localizedDescription.contains("tensor"),
                          file: file, line: line)
        }
    }

    private func valid() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", .string("llama"))
        b.addTensor("w", dims: [32, 2], type: .q8_0, bytes: [UInt8](repeating: 0, count: 68))
        return b
    }

    func testBadMagicAndVersion() throws {
        var b = valid()
        b.magic = 0x4C4C_4747
        try expectError(b.bytes()) { if case .badMagic(_, 0x4C4C_4747) = $0 { true } else { false } }
        b = valid(); b.version = 99
        try expectError(b.bytes()) { if case .unsupportedVersion(_, 99) = $0 { true } else { false } }
        b = valid(); b.version = 1
        try expectError(b.bytes()) { if case .unsupportedVersion(_, 1) = $0 { true } else { false } }
        try expectError([0x47, 0x47, 0x55]) { if case .truncated = $0 { true } else { false } }
        try expectError([]) { if case .truncated = $0 { true } else { false } }
    }

    func testHugeCounts() throws {
        var b = valid()
        b.tensorCountOverride = 1 << 60
        try expectError(b.bytes()) { if case .countTooLarge(_, "tensor", 1 << 60, _) = $0 { true } else { false } }
        b = valid(); b.tensorCountOverride = UInt64.max
        try expectError(b.bytes()) { if case .countTooLarge = $0 { true } else { false } }
        b = valid(); b.kvCountOverride = 1 << 62
        try expectError(b.bytes()) { if case .countTooLarge(_, "metadata key/value", _, _) = $0 { true } else { false } }
        b = valid(); b.kvCountOverride = 2  // one entry present, the second read runs into the tensor infos
        try expectError(b.bytes()) { _ in true }
    }

    func testStringLengthPastEnd() throws {
        var b = valid()
        b.addRaw("s", GGUFBuilder.le(GGUFValueType.string.rawValue) + GGUFBuilder.le(UInt64(1) << 50) + Array("abc".utf8))
        try expectError(b.bytes()) { if case .truncated(_, "value of 's'", _, 1 << 50, _) = $0 { true } else { false } }
        // A key whose length runs past the end.
        b = valid()
        b.entries.append(GGUFBuilder.le(UInt64.max) + [1, 2, 3])
        try expectError(b.bytes()) { if case .truncated = $0 { true } else { false } }
    }

    func testArrayLengthPastEnd() throws {
        for element: GGUFValueType in [.uint8, .uint64, .string, .array] {
            var b = valid()
            b.addRaw("arr", GGUFBuilder.le(GGUFValueType.array.rawValue) + GGUFBuilder.le(element.rawValue)
                     + GGUFBuilder.le(UInt64(1) << 40))
            try expectError(b.bytes()) { if case .countTooLarge(_, "array 'arr' element", 1 << 40, _) = $0 { true } else { false } }
        }
        // Arrays nested deeper than the limit.
        var b = valid()
        var raw = GGUFBuilder.le(GGUFValueType.array.rawValue)
        for _ in 0..<20 { raw += GGUFBuilder.le(GGUFValueType.array.rawValue) + GGUFBuilder.le(UInt64(1)) }
        b.addRaw("deep", raw + GGUFBuilder.le(GGUFValueType.uint8.rawValue) + GGUFBuilder.le(UInt64(0)))
        try expectError(b.bytes()) { if case .arrayNestingTooDeep(_, "deep", _) = $0 { true } else { false } }
        // An invalid value type.
        b = valid()
        b.addRaw("t", GGUFBuilder.le(UInt32(77)) + [0])
        try expectError(b.bytes()) { if case .invalidValueType(_, "t", 77) = $0 { true } else { false } }
    }

    func testTensorOffsetPastEnd() throws {
        var b = valid()
        b.tensors[0].offset = 1 << 20
        try expectError(b.bytes()) { if case .tensorDataOutOfBounds(_, "w", 1 << 20, 68, _) = $0 { true } else { false } }
        b = valid()
        b.tensors[0].offset = UInt64.max - 31
        try expectError(b.bytes()) { if case .tensorDataOutOfBounds = $0 { true } else { false } }
        b = valid()
        b.data.removeLast(1)  // data one byte short
        try expectError(b.bytes()) { if case .tensorDataOutOfBounds(_, "w", 0, 68, 67) = $0 { true } else { false } }
    }

    func testMisalignedOffsetAndAlignment() throws {
        var b = valid()
        b.tensors[0].offset = 1
        try expectError(b.bytes()) { if case .misalignedTensorOffset(_, "w", 1, 32) = $0 { true } else { false } }
        for bad: GGUFValue in [.uint32(0), .uint32(48), .uint64(32), .string("32")] {
            b = valid()
            b.add("general.alignment", bad)
            try expectError(b.bytes()) { if case .invalidAlignment = $0 { true } else { false } }
        }
        // A non-default alignment is honoured.
        let dir = try TemporaryDirectory(self)
        b = GGUFBuilder()
        b.alignment = 64
        b.add("general.alignment", .uint32(64))
        b.addTensor("x", dims: [3], type: .f32, bytes: [UInt8](repeating: 0, count: 12))
        b.addTensor("y", dims: [3], type: .f32, bytes: GGUFBuilder.le(Float(7).bitPattern) + [UInt8](repeating: 0, count: 8))
        try b.write(to: dir.file("a64.gguf"))
        let file = try GGUFFile(path: dir.file("a64.gguf").path)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertEqual(try file.tensorInfo(named: "y").offset, 64)
        XCTAssertEqual(try file.tensor(named: "y").dequantized().first, 7)
    }

    func testDimensionChecks() throws {
        var b = valid()
        b.tensors[0].dims = [1 << 40, 1 << 40]
        try expectError(b.bytes()) { if case .elementCountOverflow(_, "w", _) = $0 { true } else { false } }
        b = valid()
        b.tensors[0].dims = [32, (1 << 58) - (1 << 50)]  // element count fits, byte count overflows
        try expectError(b.bytes()) { if case .elementCountOverflow = $0 { true } else { false } }
        b = valid()
        b.tensors[0].dims = [32, 1 << 30]  // fits in Int but not in the file
        try expectError(b.bytes()) { if case .tensorDataOutOfBounds = $0 { true } else { false } }
        b = valid()
        b.tensors[0].dims = [32, -2]
        try expectError(b.bytes()) { if case .invalidDimension(_, "w", 1, -2) = $0 { true } else { false } }
        b = valid()
        b.tensors[0].dims = [32, 1, 1, 1, 1]
        try expectError(b.bytes()) { if case .tooManyDimensions(_, "w", 5, 4) = $0 { true } else { false } }
        b = valid()
        b.tensors[0].nDimsOverride = 0xFFFF_FFFF
        try expectError(b.bytes()) { if case .tooManyDimensions = $0 { true } else { false } }
        b = valid()
        b.tensors[0].dims = [31, 2]
        try expectError(b.bytes()) { if case .rowNotBlockMultiple(_, "w", "Q8_0", 31, 32) = $0 { true } else { false } }
    }

    func testUnknownTypeDuplicatesAndOverlap() throws {
        var b = valid()
        b.tensors[0].type = 31
        try expectError(b.bytes()) { if case .unknownTensorType(_, "w", 31) = $0 { true } else { false } }
        b = valid()
        b.add("general.architecture", .string("again"))
        try expectError(b.bytes()) { if case .duplicateKey(_, "general.architecture") = $0 { true } else { false } }
        b = valid()
        b.addTensor("w", dims: [8], type: .f32, bytes: [UInt8](repeating: 0, count: 32))
        try expectError(b.bytes()) { if case .duplicateTensor(_, "w") = $0 { true } else { false } }
        b = valid()
        b.addTensor("v", dims: [8], type: .f32, bytes: [UInt8](repeating: 0, count: 32))
        b.tensors[1].offset = 64  // w spans [0, 68)
        try expectError(b.bytes()) { if case .overlappingTensors(_, "w", "v") = $0 { true } else { false } }
    }

    func testUnsupportedTypeOpensButDoesNotDequantize() throws {
        let dir = try TemporaryDirectory(self)
        var b = GGUFBuilder()
        b.addTensor("k", dims: [256], type: .q2_K, bytes: [UInt8](repeating: 0, count: 84))
        try b.write(to: dir.file("q2k.gguf"))
        let file = try GGUFFile(path: dir.file("q2k.gguf").path)
        XCTAssertThrowsError(try file.tensor(named: "k").dequantized()) {
            XCTAssertEqual($0 as? GGUFError, .unsupportedTensorType(tensor: "k", type: "Q2_K"))
        }
    }

    func testCannotOpen() throws {
        let dir = try TemporaryDirectory(self)
        XCTAssertThrowsError(try GGUFFile(path: dir.file("missing.gguf").path)) {
            guard case .cannotOpen = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try GGUFFile(path: dir.url.path)) {
            guard case .cannotOpen(_, "not a regular file") = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
    }

    /// Every truncation of a valid file, and many random corruptions, give an error or a valid
    /// file: never a crash. Runs the parser on in-memory bytes (writing thousands of files is
    /// slow); the file path around it is covered by the tests above.
    func testTruncationsAndCorruptionsNeverCrash() throws {
        var b = valid()
        b.add("names", .array(.string(["x", "yz"])))
        b.add("nested", .array(.array([.int32([1]), .array([])])))
        b.add("n", .uint32(5))
        let good = b.bytes()
        func parse(_ bytes: [UInt8]) throws -> GGUFFile.Parsed {
            try bytes.withUnsafeBytes { try GGUFFile.parse(base: $0.baseAddress!, size: $0.count, path: "fuzz") }
        }
        XCTAssertNoThrow(try parse(good))
        for length in 1..<good.count {
            XCTAssertThrowsError(try parse(Array(good[0..<length])), "prefix \(length)")
        }
        var rng = SystemRandomNumberGenerator()
        var opened = 0
        let trials = 20_000
        for _ in 0..<trials {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = [0x00, 0xFF, 0x80, 0x7F, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            }
            guard let parsed = try? parse(bytes) else { continue }
            opened += 1
            // Whatever parsed must be consistent: every tensor inside the data section.
            for t in parsed.tensors {
                XCTAssertLessThanOrEqual(parsed.dataOffset + t.offset + t.byteCount, bytes.count)
            }
        }
        print("fuzz: \(good.count - 1) truncations rejected, \(opened)/\(trials) random corruptions still valid, none crashed")
        // And once through a real file.
        let dir = try TemporaryDirectory(self)
        try Data(good[0..<(good.count - 1)]).write(to: dir.file("cut.gguf"))
        XCTAssertThrowsError(try GGUFFile(path: dir.file("cut.gguf").path))
    }
}
