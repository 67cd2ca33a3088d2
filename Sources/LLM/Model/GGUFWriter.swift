import Foundation
import Tensor

// Writing GGUF v3 files with any metadata value and any tensor type (raw bytes), and encoding
// float32 rows as F16 or Q8_0: merged models and LoRA adapters (the runtime's and the tuner's),
// streamed to disk.
//
// Layout: magic "GGUF" | version 3 | tensor count (u64) | key/value count (u64) | key/values |
// tensor infos (name, n_dims, ne[], type, offset) | padding to the alignment | data, each tensor
// starting at a multiple of the alignment.

/// One tensor to write: its name, ggml dims (`dims[0]` fastest), type and raw bytes.
public struct GGUFTensorBytes: Sendable {
    public var name: String
    public var dims: [Int]
    public var type: GGMLType
    public var bytes: Data

    /// - Precondition: `bytes.count` is the size `type` gives for `dims` (a programmer error otherwise).
    public init(name: String, dims: [Int], type: GGMLType, bytes: Data) {
        let rowBytes = type.rowBytes(elements: dims.first ?? 1)
        precondition(rowBytes.map { $0 * dims.dropFirst().reduce(1, *) } == bytes.count,
                     "\(name): \(bytes.count) bytes do not hold \(type) \(dims)")
        self.name = name; self.dims = dims; self.type = type; self.bytes = bytes
    }
}

/// Streams a GGUF file: metadata and tensor infos first, then each tensor's bytes as produced, to
/// a temporary file renamed into place at the end (a crash leaves no half-written file).
public enum GGUFWriter {
    /// Writes `metadata` (in order) and the tensors to `path`.
    /// - Parameters:
    ///   - infos: name, ggml dims and type of each tensor, in file order.
    ///   - bytes: called once per tensor, in order, for its raw bytes (so a whole model need not be in memory).
    ///   - alignment: of the data section and of each tensor (`general.alignment` when present, else 32).
    /// - Throws: `AdapterError.writeFailed` naming the file; errors of `bytes`.
    public static func write(to path: String, metadata: [(String, GGUFValue)],
                             infos: [(name: String, dims: [Int], type: GGMLType)], alignment: Int = 32,
                             bytes: (Int) throws -> Data) throws {
        var header = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func str(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); header.append(contentsOf: b) }
        u32(GGUFFile.magic)
        u32(3)
        u64(UInt64(infos.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            str(key)
            u32(value.type.rawValue)
            append(value, to: &header)
        }
        var offset = 0, sizes: [Int] = []
        for info in infos {
            str(info.name)
            u32(UInt32(info.dims.count))
            for d in info.dims { u64(UInt64(d)) }
            u32(info.type.rawValue)
            u64(UInt64(offset))
            let size = info.type.rowBytes(elements: info.dims.first ?? 1)! * info.dims.dropFirst().reduce(1, *)
            sizes.append(size)
            offset += (size + alignment - 1) / alignment * alignment
        }
        while header.count % alignment != 0 { header.append(0) }

        let temp = path + ".partial"
        guard FileManager.default.createFile(atPath: temp, contents: header) else {
            throw AdapterError.writeFailed(path: path, detail: "cannot create \(temp)")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temp))
            defer { try? handle.close() }
            try handle.seekToEnd()
            for i in infos.indices {
                var data = try bytes(i)
                precondition(data.count == sizes[i], "\(infos[i].name): \(data.count) bytes, expected \(sizes[i])")
                while data.count % alignment != 0 { data.append(0) }
                try handle.write(contentsOf: data)
            }
            try handle.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: temp, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            if error is AdapterError { throw error }
            throw AdapterError.writeFailed(path: path, detail: error.localizedDescription)
        }
    }

    /// Appends one metadata value (without its type tag, which the caller wrote).
    static func append(_ value: GGUFValue, to d: inout Data) {
        func raw<T>(_ v: T) { withUnsafeBytes(of: v) { d.append(contentsOf: $0) } }  // little-endian hosts
        switch value {
        case let .uint8(v): raw(v)
        case let .int8(v): raw(v)
        case let .uint16(v): raw(v)
        case let .int16(v): raw(v)
        case let .uint32(v): raw(v)
        case let .int32(v): raw(v)
        case let .uint64(v): raw(v)
        case let .int64(v): raw(v)
        case let .float32(v): raw(v)
        case let .float64(v): raw(v)
        case let .bool(v): raw(UInt8(v ? 1 : 0))
        case let .string(s): raw(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8))
        case let .array(a): append(a, to: &d)
        }
    }

    /// Appends an array: element type, count, elements.
    static func append(_ array: GGUFArray, to d: inout Data) {
        func raw<T>(_ v: T) { withUnsafeBytes(of: v) { d.append(contentsOf: $0) } }
        raw(array.elementType.rawValue)
        raw(UInt64(array.count))
        func all<T>(_ values: [T]) { values.withUnsafeBytes { d.append(contentsOf: $0) } }
        switch array {
        case let .uint8(a): all(a)
        case let .int8(a): all(a)
        case let .uint16(a): all(a)
        case let .int16(a): all(a)
        case let .uint32(a): all(a)
        case let .int32(a): all(a)
        case let .uint64(a): all(a)
        case let .int64(a): all(a)
        case let .float32(a): all(a)
        case let .float64(a): all(a)
        case let .bool(a): all(a.map { UInt8($0 ? 1 : 0) })
        case let .string(a): for s in a { raw(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
        case let .array(a): for inner in a { append(inner, to: &d) }
        }
    }
}

// MARK: - Encoders

public enum TensorEncoding {
    /// `values` as IEEE half floats (round to nearest even).
    public static func f16(_ values: UnsafeBufferPointer<Float>) -> Data {
        var halves = [UInt16](repeating: 0, count: values.count)
        halves.withUnsafeMutableBufferPointer { h in
            HalfPrecision.floatToFloat16(values.baseAddress!, h.baseAddress!, count: values.count)
        }
        return halves.withUnsafeBytes { Data($0) }
    }

    /// `values` (a multiple of 32) as Q8_0 blocks, as ggml's `quantize_row_q8_0_ref`:
    /// d = max|x| / 127 stored as f16, q = round(x / d) (with the float32 d).
    public static func q8_0(_ values: UnsafeBufferPointer<Float>) -> Data {
        precondition(values.count % 32 == 0, "Q8_0 needs a multiple of 32 values")
        let blocks = values.count / 32
        var out = Data(count: blocks * 34)
        out.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            for b in 0..<blocks {
                let x = values.baseAddress! + 32 * b, block = base + 34 * b
                var amax: Float = 0
                for i in 0..<32 { amax = max(amax, abs(x[i])) }
                let d = amax / 127, id = d == 0 ? 0 : 1 / d
                var dh: UInt16 = 0
                var df = d
                HalfPrecision.floatToFloat16(&df, &dh, count: 1)
                block.storeBytes(of: dh.littleEndian, toByteOffset: 0, as: UInt16.self)
                for i in 0..<32 {
                    block.storeBytes(of: Int8((x[i] * id).rounded(.toNearestOrAwayFromZero)), toByteOffset: 2 + i, as: Int8.self)
                }
            }
        }
        return out
    }
}
