/// A bounds-checked little-endian reader over the mapped bytes of a GGUF file.
///
/// Every read checks the bytes left first; every count is checked against the bytes its
/// elements need at minimum *before* anything is allocated (ggml `gguf.cpp` habit).
struct GGUFCursor {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    private(set) var offset = 0

    /// Arrays of arrays deeper than this are refused: a hostile file could otherwise recurse
    /// millions of levels deep with 12 bytes per level.
    static let maxArrayDepth = 8

    init(base: UnsafeRawPointer, size: Int, path: String) {
        self.base = base
        self.size = size
        self.path = path
    }

    var remaining: Int { size - offset }

    // MARK: Primitives

    mutating func need(_ n: UInt64, _ what: @autoclosure () -> String) throws {
        guard n <= UInt64(remaining) else {
            throw GGUFError.truncated(path: path, what: what(), offset: offset, needed: n, available: remaining)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(UInt64(MemoryLayout<T>.size), what())
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func readFloat(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readDouble(_ what: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    /// A count whose elements take at least `minimumElementBytes` each: refused unless they
    /// could all fit in the bytes left.
    mutating func readCount(_ what: @autoclosure () -> String, minimumElementBytes: Int) throws -> Int {
        let count = try read(UInt64.self, what())
        let (bytes, overflow) = count.multipliedReportingOverflow(by: UInt64(minimumElementBytes))
        guard !overflow, bytes <= UInt64(remaining) else {
            throw GGUFError.countTooLarge(path: path, what: what(), count: count, bytesLeft: remaining)
        }
        return Int(count)
    }

    /// A `gguf_string`: uint64 length then that many UTF-8 bytes (invalid UTF-8 is repaired).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let length = try read(UInt64.self, what() + " length")
        try need(length, what())
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: Int(length))
        offset += Int(length)
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Metadata values

    mutating func readValueType(key: String) throws -> GGUFValueType {
        let raw = try read(UInt32.self, "type of '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw GGUFError.invalidValueType(path: path, key: key, typeID: raw)
        }
        return type
    }

    mutating func readValue(_ type: GGUFValueType, key: String) throws -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float32: return .float32(try readFloat(what))
        case .float64: return .float64(try readDouble(what))
        case .bool: return .bool(try read(UInt8.self, what) != 0)
        case .string: return .string(try readString(what))
        case .array:
            let element = try readValueType(key: key)
            let count = try readCount("array '\(key)' element", minimumElementBytes: element.minimumByteSize)
            return .array(try readArray(element, count: count, key: key, depth: 1))
        }
    }

    /// `count` elements of `element` type; `count` was checked against the bytes left. `depth` is
    /// the nesting level of this array (1 for a value's own array).
    private mutating func readArray(_ element: GGUFValueType, count: Int, key: String, depth: Int) throws -> GGUFArray {
        switch element {
        case .uint8: return .uint8(try readIntegers(count, key))
        case .int8: return .int8(try readIntegers(count, key))
        case .uint16: return .uint16(try readIntegers(count, key))
        case .int16: return .int16(try readIntegers(count, key))
        case .uint32: return .uint32(try readIntegers(count, key))
        case .int32: return .int32(try readIntegers(count, key))
        case .uint64: return .uint64(try readIntegers(count, key))
        case .int64: return .int64(try readIntegers(count, key))
        case .float32: return .float32(try readIntegers(count, key).map { (bits: UInt32) in Float(bitPattern: bits) })
        case .float64: return .float64(try readIntegers(count, key).map { (bits: UInt64) in Double(bitPattern: bits) })
        case .bool: return .bool(try readIntegers(count, key).map { (byte: UInt8) in byte != 0 })
        case .string:
            var items = [String]()
            items.reserveCapacity(count)  // bounded: 8 bytes of file per element at least
            for _ in 0..<count { items.append(try readString("element of array '\(key)'")) }
            return .string(items)
        case .array:
            var items = [GGUFArray]()
            items.reserveCapacity(count)  // bounded: 12 bytes of file per element at least
            for _ in 0..<count {
                guard depth < Self.maxArrayDepth else {
                    throw GGUFError.arrayNestingTooDeep(path: path, key: key, maxDepth: Self.maxArrayDepth)
                }
                let inner = try readValueType(key: key)
                let innerCount = try readCount("array '\(key)' element", minimumElementBytes: inner.minimumByteSize)
                items.append(try readArray(inner, count: innerCount, key: key, depth: depth + 1))
            }
            return .array(items)
        }
    }

    private mutating func readIntegers<T: FixedWidthInteger>(_ count: Int, _ key: String) throws -> [T] {
        let size = MemoryLayout<T>.size
        try need(UInt64(count) * UInt64(size), "array '\(key)'")
        var items = [T]()
        items.reserveCapacity(count)
        for i in 0..<count {
            items.append(T(littleEndian: base.loadUnaligned(fromByteOffset: offset + i * size, as: T.self)))
        }
        offset += count * size
        return items
    }
}
