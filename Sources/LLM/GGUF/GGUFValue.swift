/// The type tag of a GGUF metadata value, as stored in the file (`gguf_type` in ggml).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes one value occupies at minimum: its fixed size, or the length prefix of a string
    /// (8) or the type + count header of an array (12). Used to bound array counts before
    /// allocating.
    var minimumByteSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }
}

/// One metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFArray)

    /// The type tag this value was stored with.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// A short description of the type for error messages, e.g. `array<string>`.
    public var typeDescription: String {
        if case let .array(a) = self { return "array<\(a.elementType)>" }
        return "\(type)"
    }

    // MARK: Typed views (nil when the type does not fit)

    /// Any integer width, when the value fits in `Int`.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// float32 or float64 (narrowed to Float).
    public var floatValue: Float? {
        switch self {
        case let .float32(v): return v
        case let .float64(v): return Float(v)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case let .bool(v) = self { return v }
        return nil
    }

    public var stringValue: String? {
        if case let .string(v) = self { return v }
        return nil
    }

    public var arrayValue: GGUFArray? {
        if case let .array(v) = self { return v }
        return nil
    }
}

/// A metadata array, stored with its element type so that memory stays proportional to the
/// file's bytes (a hostile 100 MB array of uint8 costs 100 MB, not 24 bytes per element).
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16])
    case uint32([UInt32]), int32([Int32]), uint64([UInt64]), int64([Int64])
    case float32([Float]), float64([Double]), bool([Bool]), string([String])
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    public var count: Int {
        switch self {
        case let .uint8(a): return a.count
        case let .int8(a): return a.count
        case let .uint16(a): return a.count
        case let .int16(a): return a.count
        case let .uint32(a): return a.count
        case let .int32(a): return a.count
        case let .uint64(a): return a.count
        case let .int64(a): return a.count
        case let .float32(a): return a.count
        case let .float64(a): return a.count
        case let .bool(a): return a.count
        case let .string(a): return a.count
        case let .array(a): return a.count
        }
    }

    /// The elements as integers, for any integer element type (nil otherwise, or when a uint64
    /// does not fit in `Int`).
    public var ints: [Int]? {
        switch self {
        case let .uint8(a): return a.map(Int.init)
        case let .int8(a): return a.map(Int.init)
        case let .uint16(a): return a.map(Int.init)
        case let .int16(a): return a.map(Int.init)
        case let .uint32(a): return a.map(Int.init)
        case let .int32(a): return a.map(Int.init)
        case let .int64(a): return a.map(Int.init)
        case let .uint64(a):
            var out = [Int]()
            out.reserveCapacity(a.count)
            for v in a {
                guard let i = Int(exactly: v) else { return nil }
                out.append(i)
            }
            return out
        default: return nil
        }
    }

    /// The elements as floats, for float32 / float64 elements.
    public var floats: [Float]? {
        switch self {
        case let .float32(a): return a
        case let .float64(a): return a.map(Float.init)
        default: return nil
        }
    }

    public var strings: [String]? {
        if case let .string(a) = self { return a }
        return nil
    }
}

/// The key/value metadata of a GGUF file, in file order, with typed accessors.
///
/// The throwing accessors name the key and the expected vs actual type; `metadata[key]?.intValue`
/// is the optional form.
public struct GGUFMetadata: Sendable {
    /// Keys in the order they appear in the file.
    public let keys: [String]
    private let values: [String: GGUFValue]

    init(keys: [String], values: [String: GGUFValue]) {
        self.keys = keys
        self.values = values
    }

    public subscript(key: String) -> GGUFValue? { values[key] }
    public func contains(_ key: String) -> Bool { values[key] != nil }

    private func value(_ key: String) throws -> GGUFValue {
        guard let v = values[key] else { throw GGUFError.metadataKeyMissing(key: key) }
        return v
    }

    private func mismatch(_ key: String, _ expected: String, _ actual: GGUFValue) -> GGUFError {
        .metadataTypeMismatch(key: key, expected: expected, actual: actual.typeDescription)
    }

    /// - Returns: the string stored under `key`.
    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard let s = v.stringValue else { throw mismatch(key, "string", v) }
        return s
    }

    /// - Returns: an integer of any width stored under `key` (uint64 values above `Int.max` throw).
    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.intValue else { throw mismatch(key, "integer", v) }
        return i
    }

    /// - Returns: a float32 or float64 stored under `key`, as `Float`.
    public func float(_ key: String) throws -> Float {
        let v = try value(key)
        guard let f = v.floatValue else { throw mismatch(key, "float", v) }
        return f
    }

    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard let b = v.boolValue else { throw mismatch(key, "bool", v) }
        return b
    }

    /// - Returns: the elements of an `array<string>`.
    public func strings(_ key: String) throws -> [String] {
        let v = try value(key)
        guard let a = v.arrayValue?.strings else { throw mismatch(key, "array<string>", v) }
        return a
    }

    /// - Returns: the elements of an array of any integer type.
    public func ints(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard let a = v.arrayValue?.ints else { throw mismatch(key, "array<integer>", v) }
        return a
    }

    /// - Returns: the elements of an `array<float32>` or `array<float64>`.
    public func floats(_ key: String) throws -> [Float] {
        let v = try value(key)
        guard let a = v.arrayValue?.floats else { throw mismatch(key, "array<float>", v) }
        return a
    }
}
