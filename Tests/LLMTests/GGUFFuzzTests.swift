import Foundation
import XCTest
@testable import LLM

/// Mutated GGUF headers: every one must either open or throw a `GGUFError` — never crash, hang
/// or allocate without bound. Seeded, so a failure reproduces; the failing case's seed and
/// mutation are printed.
final class GGUFFuzzTests: XCTestCase {
    // MARK: Mutations

    /// One random change to a file's bytes (`region` is where offsets are drawn from).
    private enum Mutation: CustomStringConvertible {
        case flipBits([(offset: Int, bit: Int)])
        case setByte(offset: Int, value: UInt8)
        /// A little-endian integer (4 or 8 bytes) written over whatever was there: huge counts,
        /// lengths, offsets, dims or type ids.
        case overwrite(offset: Int, value: UInt64, width: Int)
        case truncate(length: Int)

        var description: String {
            switch self {
            case let .flipBits(bits): return "flip \(bits.map { "\($0.offset):\($0.bit)" })"
            case let .setByte(offset, value): return "byte \(offset) = \(value)"
            case let .overwrite(offset, value, width): return "u\(width * 8) at \(offset) = \(value)"
            case let .truncate(length): return "truncate to \(length)"
            }
        }
    }

    /// Values that break naive readers: 0, small, around 2^31/2^32/2^63, all ones, near the size.
    private static func interestingValue(_ rng: inout FuzzRNG, size: Int) -> UInt64 {
        let choices: [UInt64] = [
            0, 1, 2, 7, 13, 255, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
            0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, .max, .max - 7, UInt64(size), UInt64(size) + 1,
            UInt64(size) / 2, UInt64(size) * 8, 1 << 40,
        ]
        return rng.next() % 4 == 0 ? rng.next() : choices[Int(rng.next() % UInt64(choices.count))]
    }

    private static func randomMutation(_ rng: inout FuzzRNG, region: Range<Int>, size: Int) -> Mutation {
        func offset() -> Int { region.lowerBound + Int(rng.next() % UInt64(region.count)) }
        switch rng.next() % 10 {
        case 0, 1, 2:
            return .flipBits((0..<(1 + Int(rng.next() % 4))).map { _ in (offset(), Int(rng.next() % 8)) })
        case 3, 4:
            return .setByte(offset: offset(), value: UInt8(truncatingIfNeeded: rng.next()))
        case 5, 6, 7:
            let width = rng.next() % 2 == 0 ? 8 : 4
            return .overwrite(offset: min(offset(), size - width), value: interestingValue(&rng, size: size), width: width)
        default:
            return .truncate(length: Int(rng.next() % UInt64(region.upperBound + 1)))
        }
    }

    /// Applies `mutation` in place; returns the bytes to restore and the length to parse.
    private static func apply(_ mutation: Mutation, to bytes: UnsafeMutableRawBufferPointer) -> (undo: [(Int, UInt8)], length: Int) {
        var undo = [(Int, UInt8)]()
        func set(_ i: Int, _ v: UInt8) {
            undo.append((i, bytes[i]))
            bytes[i] = v
        }
        switch mutation {
        case let .flipBits(bits):
            for (offset, bit) in bits { set(offset, bytes[offset] ^ (1 << bit)) }
        case let .setByte(offset, value):
            set(offset, value)
        case let .overwrite(offset, value, width):
            for k in 0..<width { set(offset + k, UInt8(truncatingIfNeeded: value >> (8 * k))) }
        case let .truncate(length):
            return ([], length)
        }
        return (undo, bytes.count)
    }

    // MARK: Outcomes

    private struct Tally {
        var opened = 0
        var errors: [String: Int] = [:]

        mutating func error(_ e: GGUFError) {
            let name = String(describing: e).prefix { $0 != "(" }
            errors[String(name), default: 0] += 1
        }

        var summary: String {
            "opened \(opened), errors " + errors.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
    }

    /// Parses the first `length` bytes: must succeed or throw a `GGUFError`.
    private func parse(_ bytes: UnsafeMutableRawBufferPointer, length: Int, _ tally: inout Tally,
                       _ context: @autoclosure () -> String) -> GGUFFile.Parsed? {
        do {
            let parsed = try GGUFFile.parse(base: UnsafeRawPointer(bytes.baseAddress!), size: length, path: "fuzz.gguf")
            tally.opened += 1
            return parsed
        } catch let error as GGUFError {
            tally.error(error)
            _ = error.errorDescription  // every message renders
        } catch {
            XCTFail("\(context()): not a GGUFError: \(error)")
        }
        return nil
    }

    /// What a caller does with a file that opened: read every tensor's first row, build the
    /// tokenizer and the chat template. Only typed errors may come out.
    private func exercise(_ file: GGUFFile, _ context: @autoclosure () -> String) {
        for info in file.tensors where info.rowCount > 0 && info.rowLength <= 1 << 20 {
            var row = [Float](repeating: 0, count: info.rowLength)
            do {
                try row.withUnsafeMutableBufferPointer { try GGUFTensor(info: info, file: file).dequantizeRow(0, into: $0) }
            } catch is GGUFError {
            } catch {
                XCTFail("\(context()): dequantize \(info.name): \(error)")
            }
        }
        do {
            let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
            let ids = tokenizer.encode("Hello wörld 🧬 <|im_start|>", addBOS: true, parseSpecial: true)
            _ = tokenizer.decode(ids + [-1, tokenizer.vocabularySize, Int.max])
        } catch is GGUFError {
        } catch is TokenizerError {
        } catch {
            XCTFail("\(context()): tokenizer: \(error)")
        }
        do {
            _ = try ChatTemplate(metadata: file.metadata).render([.user("hi")])
        } catch is ChatTemplateError {
        } catch {
            XCTFail("\(context()): chat template: \(error)")
        }
    }

    // MARK: A small file with every value type

    /// A valid file: every metadata type (nested arrays too), a 5-token byte-level vocabulary
    /// with merges and a chat template, and tensors of several block types.
    private static func smallFile(seed: UInt64) -> [UInt8] {
        var rng = FuzzRNG(seed: seed)
        func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        var b = GGUFBuilder()
        b.add("general.architecture", .string("llama"))
        b.add("general.alignment", .uint32(32))
        b.add("u8", .uint8(7)); b.add("i8", .int8(-7)); b.add("u16", .uint16(700)); b.add("i16", .int16(-700))
        b.add("i32", .int32(-70_000)); b.add("u64", .uint64(1 << 40)); b.add("i64", .int64(-(1 << 40)))
        b.add("f32", .float32(0.5)); b.add("f64", .float64(-0.25)); b.add("bool", .bool(true))
        b.add("nested", .array(.array([.int32([1, 2, 3]), .string(["a", "bc"])])))
        b.add("floats", .array(.float32([1, 2, 3, 4])))
        b.add("tokenizer.ggml.model", .string("gpt2"))
        b.add("tokenizer.ggml.tokens", .array(.string(["h", "e", "he", "<|im_start|>", "Ġ"])))
        b.add("tokenizer.ggml.token_type", .array(.int32([1, 1, 1, 3, 1])))
        b.add("tokenizer.ggml.merges", .array(.string(["h e"])))
        b.add("tokenizer.ggml.bos_token_id", .uint32(3))
        b.add("tokenizer.chat_template", .string("{{'<|im_start|>' + message['role'] + '\\n'}}"))
        b.addTensor("f32", dims: [8, 2], type: .f32, bytes: randomBytes(64))
        b.addTensor("f16", dims: [4], type: .f16, bytes: randomBytes(8))
        b.addTensor("q8_0", dims: [32, 2], type: .q8_0, bytes: randomBytes(68))
        b.addTensor("q4_k", dims: [256], type: .q4_K, bytes: randomBytes(144))
        b.addTensor("q6_k", dims: [256], type: .q6_K, bytes: randomBytes(210))
        return b.bytes()
    }

    func testFuzzSmallFile() throws {
        var bytes = Self.smallFile(seed: 1)
        let directory = try FastDirectory()
        var tally = Tally()
        let cases = 6000
        bytes.withUnsafeMutableBytes { buffer in
            XCTAssertNotNil(parse(buffer, length: buffer.count, &tally, "unmutated"), "the unmutated file opens")
        }
        var rng = FuzzRNG(seed: 0x6775_6666)
        var written = 0
        for i in 0..<cases {
            let mutation = Self.randomMutation(&rng, region: 0..<bytes.count, size: bytes.count)
            let context = "case \(i): \(mutation)"
            bytes.withUnsafeMutableBytes { buffer in
                let (undo, length) = Self.apply(mutation, to: buffer)
                defer { for (offset, value) in undo.reversed() { buffer[offset] = value } }
                guard parse(buffer, length: length, &tally, context) != nil else { return }
                // It parsed: open it as a real file and use it.
                let url = directory.file("case\(written % 8).gguf")
                written += 1
                do {
                    try Data(buffer[..<length]).write(to: url)
                    exercise(try GGUFFile(path: url.path), context)
                } catch {
                    XCTFail("\(context): parsed in memory but not from disk: \(error)")
                }
            }
        }
        print("gguf fuzz (small file, \(bytes.count) bytes, \(cases) cases): \(tally.summary)")
        XCTAssertEqual(tally.opened + tally.errors.values.reduce(0, +), cases + 1)
        XCTAssertGreaterThan(tally.opened, 1, "some mutations (e.g. in tensor data or strings) still open")
        XCTAssertGreaterThan(tally.errors.count, 5, "many kinds of damage are reported")
    }

    // MARK: The real SmolLM2 header

    /// SmolLM2's real key/values (in file order) and 272 tensor infos, re-encoded with the
    /// vocabulary cut to its first 512 tokens (and the merges among them) so that one parse takes
    /// well under a millisecond, followed by a data section of the real size (98 MB of zeros: the
    /// parser checks tensor bounds, not contents, and zeros make garbage read as key/values or
    /// tensor infos fail fast as duplicates instead of as 50 MB strings).
    private static func compactSmolLM2(_ file: GGUFFile) throws -> (bytes: [UInt8], header: Int) {
        let keep = 512
        let tokens = try file.metadata.strings("tokenizer.ggml.tokens").prefix(keep)
        let known = Set(tokens)
        var b = GGUFBuilder()
        b.alignment = file.alignment
        for key in file.metadata.keys {
            guard var value = file.metadata[key] else { continue }
            switch key {
            case "tokenizer.ggml.tokens": value = .array(.string(Array(tokens)))
            case "tokenizer.ggml.token_type": value = .array(.int32(try file.metadata.ints(key).prefix(keep).map { Int32($0) }))
            case "tokenizer.ggml.merges":
                value = .array(.string(try file.metadata.strings(key).filter { merge in
                    let parts = merge.split(separator: " ", maxSplits: 1).map(String.init)
                    return parts.count == 2 && known.contains(parts[0]) && known.contains(parts[1])
                        && known.contains(parts[0] + parts[1])
                }))
            default: break
            }
            b.add(key, value)
        }
        for info in file.tensors {
            b.tensors.append(.init(name: info.name, dims: info.dims.map(Int64.init), type: info.type.rawValue,
                                   offset: UInt64(info.offset)))
        }
        var header = b
        header.rawTail = []
        let headerBytes = header.bytes().count
        b.data = [UInt8](repeating: 0, count: file.fileSize - file.dataOffset)
        return (b.bytes(), headerBytes)
    }

    /// About 4 ms a case on average, dominated by a few dozen mutations that make the parser read
    /// the zeros of the data section as a huge (but in-bounds) array or string.
    func testFuzzSmolLM2Header() throws {
        let file = try SharedModel.open()
        let compact = try Self.compactSmolLM2(file)
        var bytes = compact.bytes
        let header = compact.header
        // The tensor infos sit at the end of the header; the key/values before them.
        let infoBytes = file.tensors.reduce(0) { $0 + 8 + $1.name.utf8.count + 4 + 8 * $1.dims.count + 4 + 8 }
        let regions = [0..<(header - infoBytes), (header - infoBytes)..<header, 0..<header]
        var tally = Tally()
        bytes.withUnsafeMutableBytes { buffer in
            XCTAssertNotNil(parse(buffer, length: buffer.count, &tally, "unmutated"), "the compact SmolLM2 file opens")
        }
        var tokenizers = 0
        var rng = FuzzRNG(seed: 0x5350_4D21)
        let cases = 1500
        for i in 0..<cases {
            let region = regions[Int(rng.next() % UInt64(regions.count))]
            var mutation = Self.randomMutation(&rng, region: region, size: bytes.count)
            if case .truncate = mutation, rng.next() % 2 == 0 {  // half of the truncations inside the data
                mutation = .truncate(length: header + Int(rng.next() % UInt64(bytes.count - header)))
            }
            let context = "SmolLM2 case \(i): \(mutation)"
            bytes.withUnsafeMutableBytes { buffer in
                let (undo, length) = Self.apply(mutation, to: buffer)
                defer { for (offset, value) in undo.reversed() { buffer[offset] = value } }
                guard let parsed = parse(buffer, length: length, &tally, context) else { return }
                // The tokenizer from the (possibly damaged) vocabulary.
                do {
                    let tokenizer = try TokenizerFactory.make(metadata: parsed.metadata)
                    _ = tokenizer.decode(tokenizer.encode("Hello world <|im_end|>", addBOS: true, parseSpecial: true))
                    tokenizers += 1
                } catch is GGUFError {
                } catch is TokenizerError {
                } catch {
                    XCTFail("\(context): tokenizer: \(error)")
                }
            }
        }
        print("gguf fuzz (SmolLM2 compact header, \(header) bytes, \(cases) cases): \(tally.summary); \(tokenizers) tokenizers built")
        XCTAssertEqual(tally.opened + tally.errors.values.reduce(0, +), cases + 1)
        XCTAssertGreaterThan(tally.opened, 1)
        XCTAssertGreaterThan(tally.errors.count, 5)
    }

    /// A few mutations of the full, unshortened SmolLM2 header (1.8 MB: each parse reads all
    /// 98k vocabulary strings), aimed at the vocabulary arrays' lengths and strings.
    func testFuzzFullSmolLM2Vocabulary() throws {
        let file = try SharedModel.open()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
        var tally = Tally()
        var rng = FuzzRNG(seed: 0xF011)
        let cases = 24
        for i in 0..<cases {
            let mutation = Self.randomMutation(&rng, region: 0..<file.dataOffset, size: bytes.count)
            bytes.withUnsafeMutableBytes { buffer in
                let (undo, length) = Self.apply(mutation, to: buffer)
                defer { for (offset, value) in undo.reversed() { buffer[offset] = value } }
                _ = parse(buffer, length: length, &tally, "full SmolLM2 case \(i): \(mutation)")
            }
        }
        print("gguf fuzz (SmolLM2 full header, \(file.dataOffset) bytes, \(cases) cases): \(tally.summary)")
        XCTAssertEqual(tally.opened + tally.errors.values.reduce(0, +), cases)
    }
}

/// A scratch directory in memory (/dev/shm) when there is one: writing thousands of small files
/// to /tmp costs milliseconds each on this machine's disk.
private final class FastDirectory {
    let url: URL
    init() throws {
        let shm = URL(fileURLWithPath: "/dev/shm")
        let base = FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
        url = base.appendingPathComponent("selfspec-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}
