import Foundation
@testable import LLM

/// Writes small GGUF files for tests, including deliberately broken ones: every field can be
/// overridden with a raw value.
struct GGUFBuilder {
    struct Tensor {
        var name: String
        var dims: [Int64]
        var type: UInt32
        var offset: UInt64
        var nDimsOverride: UInt32?
    }

    var magic: UInt32 = GGUFFile.magic
    var version: UInt32 = 3
    var tensorCountOverride: UInt64?
    var kvCountOverride: UInt64?
    /// Encoded key/value entries (key, type and value), in order.
    var entries: [[UInt8]] = []
    var tensors: [Tensor] = []
    var alignment = 32
    var data: [UInt8] = []
    /// Bytes appended after the tensor infos instead of padding + data (for truncation tests).
    var rawTail: [UInt8]?

    // MARK: Encoding primitives

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    /// A whole value of `type` (without the type tag).
    static func value(_ v: GGUFValue) -> [UInt8] {
        switch v {
        case let .uint8(x): return le(x)
        case let .int8(x): return le(x)
        case let .uint16(x): return le(x)
        case let .int16(x): return le(x)
        case let .uint32(x): return le(x)
        case let .int32(x): return le(x)
        case let .uint64(x): return le(x)
        case let .int64(x): return le(x)
        case let .float32(x): return le(x.bitPattern)
        case let .float64(x): return le(x.bitPattern)
        case let .bool(x): return [x ? 1 : 0]
        case let .string(x): return string(x)
        case let .array(a): return array(a)
        }
    }

    /// An array value: element type, count, elements.
    static func array(_ a: GGUFArray) -> [UInt8] {
        let header = le(a.elementType.rawValue) + le(UInt64(a.count))
        switch a {
        case let .uint8(v): return header + v.flatMap { le($0) }
        case let .int8(v): return header + v.flatMap { le($0) }
        case let .uint16(v): return header + v.flatMap { le($0) }
        case let .int16(v): return header + v.flatMap { le($0) }
        case let .uint32(v): return header + v.flatMap { le($0) }
        case let .int32(v): return header + v.flatMap { le($0) }
        case let .uint64(v): return header + v.flatMap { le($0) }
        case let .int64(v): return header + v.flatMap { le($0) }
        case let .float32(v): return header + v.flatMap { le($0.bitPattern) }
        case let .float64(v): return header + v.flatMap { le($0.bitPattern) }
        case let .bool(v): return header + v.map { $0 ? 1 : 0 }
        case let .string(v): return header + v.flatMap { string($0) }
        case let .array(v): return header + v.flatMap { array($0) }
        }
    }

    mutating func add(_ key: String, _ v: GGUFValue) {
        entries.append(Self.string(key) + Self.le(v.type.rawValue) + Self.value(v))
    }

    /// Adds a raw entry: key, then arbitrary bytes for type and value.
    mutating func addRaw(_ key: String, _ bytes: [UInt8]) {
        entries.append(Self.string(key) + bytes)
    }

    /// Appends a tensor whose data is `bytes`, placed at the next aligned offset.
    mutating func addTensor(_ name: String, dims: [Int64], type: GGMLType, bytes: [UInt8]) {
        while data.count % alignment != 0 { data.append(0) }
        tensors.append(Tensor(name: name, dims: dims, type: type.rawValue, offset: UInt64(data.count)))
        data += bytes
    }

    func bytes() -> [UInt8] {
        var out = Self.le(magic) + Self.le(version)
        out += Self.le(tensorCountOverride ?? UInt64(tensors.count))
        out += Self.le(kvCountOverride ?? UInt64(entries.count))
        for e in entries { out += e }
        for t in tensors {
            out += Self.string(t.name) + Self.le(t.nDimsOverride ?? UInt32(t.dims.count))
            for d in t.dims { out += Self.le(d) }
            out += Self.le(t.type) + Self.le(t.offset)
        }
        if let rawTail { return out + rawTail }
        while out.count % alignment != 0 { out.append(0) }
        return out + data
    }

    func write(to url: URL) throws {
        try Data(bytes()).write(to: url)
    }
}
