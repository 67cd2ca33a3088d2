import Foundation

/// A float32 array with its shape (row-major, last dimension fastest).
public struct FloatTensor: Sendable, Equatable {
    /// The dimensions, outermost first; `[]` for a scalar.
    public var shape: [Int]
    /// `shape.reduce(1, *)` values.
    public var values: [Float]

    /// Wraps values with a shape.
    /// - Parameters:
    ///   - shape: the dimensions; their product must equal `values.count`.
    ///   - values: the values, row-major.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "FloatTensor: shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// The element types of the safetensors format and their sizes in bytes.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .F64, .I64, .U64: return 8
        }
    }

    /// The dtypes ``SafetensorsFile/floats(_:)`` converts to float32.
    public static let floatConvertible: [SafetensorsDType] = [.F32, .F16, .BF16]
}

/// One tensor's header entry, already validated against the file.
public struct SafetensorsEntry: Sendable, Equatable {
    /// The tensor's name in the file.
    public let name: String
    /// Its element type.
    public let dtype: SafetensorsDType
    /// Its dimensions.
    public let shape: [Int]
    /// Its bytes, relative to the start of the data section.
    public let byteRange: Range<Int>
    /// Number of elements (`shape` product).
    public var count: Int { shape.reduce(1, *) }
}

/// A bounds-checked reader of one `.safetensors` file (memory-mapped).
///
/// Layout: `u64` little-endian header length `H`, then `H` bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
/// then the data section; offsets are relative to the data section.
///
/// Everything is validated in ``init(path:maxHeaderBytes:)`` before any tensor byte is read:
/// the header length against the file size and a limit, the JSON form, each dtype, each range
/// inside the data section, each byte length against `shape product × dtype size` (overflow
/// checked), and that no two ranges overlap. Values are assumed little-endian (x86-64, arm64).
public final class SafetensorsFile: Sendable {
    /// Default cap on the JSON header (the reference implementation's limit).
    public static let defaultMaxHeaderBytes = 100_000_000

    /// The path the file was opened with.
    public let path: String
    /// Every tensor, by name.
    public let entries: [String: SafetensorsEntry]
    /// The `__metadata__` string map (empty when absent).
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// Opens and validates `path`.
    /// - Parameters:
    ///   - path: the `.safetensors` file.
    ///   - maxHeaderBytes: refuse headers longer than this.
    /// - Throws: ``SafetensorsError`` naming the file, the tensor and expected vs actual.
    public init(path: String, maxHeaderBytes: Int = SafetensorsFile.defaultMaxHeaderBytes) throws {
        self.path = path
        do { file = try MappedFile(path: path) } catch let MappedFileError.cannotOpen(_, reason) {
            throw SafetensorsError.cannotOpen(file: path, reason: reason)
        }
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw SafetensorsError.truncatedHeader(file: path, fileBytes: bytes.count) }
        let headerBytes = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerBytes <= UInt64(maxHeaderBytes) else {
            throw SafetensorsError.headerTooLarge(file: path, headerBytes: headerBytes, limit: maxHeaderBytes)
        }
        guard headerBytes <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.headerPastEnd(file: path, headerBytes: headerBytes, available: bytes.count - 8)
        }
        dataStart = 8 + Int(headerBytes)
        let json = Data(bytes[8..<dataStart])
        let header = try Self.decodeHeader(json, file: path)
        metadata = header.metadata
        entries = try Self.validate(header.entries, dataBytes: bytes.count - dataStart, file: path)
    }

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    // MARK: Reading

    /// The validated entry of `name`.
    /// - Parameter name: the tensor name.
    /// - Returns: its dtype, shape and byte range.
    /// - Throws: ``SafetensorsError/missingTensor(file:tensor:)``.
    public func entry(_ name: String) throws -> SafetensorsEntry {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(file: path, tensor: name) }
        return e
    }

    /// Reads `name` as float32 (F32 copied, F16 and BF16 converted).
    /// - Parameter name: the tensor name.
    /// - Returns: its shape and values.
    /// - Throws: ``SafetensorsError/missingTensor(file:tensor:)`` or
    ///   ``SafetensorsError/unsupportedDType(file:tensor:dtype:supported:)``.
    public func floats(_ name: String) throws -> FloatTensor {
        let e = try entry(name)
        guard SafetensorsDType.floatConvertible.contains(e.dtype) else {
            throw SafetensorsError.unsupportedDType(file: path, tensor: name, dtype: e.dtype.rawValue,
                                                    supported: SafetensorsDType.floatConvertible.map(\.rawValue))
        }
        let n = e.count
        guard n > 0 else { return FloatTensor(shape: e.shape, values: []) }
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.byteRange.lowerBound)..<(dataStart + e.byteRange.upperBound)])
        let values = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch e.dtype {
            case .F32:
                UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
            case .F16, .BF16:
                // The source may be unaligned; copy the halves into aligned storage first.
                let halves = [UInt16](unsafeUninitializedCapacity: n) { h, c in
                    UnsafeMutableRawBufferPointer(h).copyMemory(from: raw)
                    c = n
                }
                halves.withUnsafeBufferPointer { h in
                    if e.dtype == .F16 {
                        HalfPrecision.float16ToFloat(h.baseAddress!, out.baseAddress!, count: n)
                    } else {
                        HalfPrecision.bfloat16ToFloat(h.baseAddress!, out.baseAddress!, count: n)
                    }
                }
            default:
                preconditionFailure("dtype checked above")
            }
            initialized = n
        }
        return FloatTensor(shape: e.shape, values: values)
    }

    /// Reads `name` as float32 after checking its shape.
    /// - Parameters:
    ///   - name: the tensor name.
    ///   - shape: the shape the caller expects.
    /// - Returns: the values, row-major.
    /// - Throws: ``SafetensorsError/shapeMismatch(file:tensor:expected:actual:)`` and the errors of ``floats(_:)``.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let e = try entry(name)
        guard e.shape == shape else {
            throw SafetensorsError.shapeMismatch(file: path, tensor: name, expected: shape, actual: e.shape)
        }
        return try floats(name).values
    }

    /// Calls `body` with the raw bytes of `name` (any dtype), valid only during the call.
    /// - Parameters:
    ///   - name: the tensor name.
    ///   - body: reads the bytes.
    /// - Returns: what `body` returns.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        return try body(UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.byteRange.lowerBound)..<(dataStart + e.byteRange.upperBound)]))
    }

    // MARK: Header validation

    private struct RawEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let data_offsets: [Int]
    }

    private struct Header: Decodable {
        var entries: [(name: String, entry: RawEntry)] = []
        var metadata: [String: String] = [:]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            for key in c.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try c.decode([String: String].self, forKey: key)
                } else {
                    entries.append((key.stringValue, try c.decode(RawEntry.self, forKey: key)))
                }
            }
        }
    }

    private static func decodeHeader(_ json: Data, file: String) throws -> Header {
        do {
            return try JSONDecoder().decode(Header.self, from: json)
        } catch let error as DecodingError {
            let (path, reason) = describe(error)
            if let first = path.first, first != "__metadata__" {
                throw SafetensorsError.malformedEntry(file: file, tensor: first, reason: reason)
            }
            throw SafetensorsError.malformedHeader(file: file, reason: reason)
        } catch {
            throw SafetensorsError.malformedHeader(file: file, reason: "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> (path: [String], reason: String) {
        func keys(_ c: DecodingError.Context) -> [String] { c.codingPath.map(\.stringValue) }
        switch error {
        case let .keyNotFound(key, c):
            return (keys(c), "missing field '\(key.stringValue)'")
        case let .typeMismatch(type, c):
            return (keys(c), "expected \(type) at \(keys(c).joined(separator: ".")): \(c.debugDescription)")
        case let .valueNotFound(type, c):
            return (keys(c), "expected \(type) at \(keys(c).joined(separator: ".")), found null")
        case let .dataCorrupted(c):
            let underlying = c.underlyingError.map { " (\($0))" } ?? ""
            return (keys(c), "not valid JSON: \(c.debugDescription)\(underlying)")
        @unknown default:
            return ([], "\(error)")
        }
    }

    private static func validate(_ raw: [(name: String, entry: RawEntry)], dataBytes: Int,
                                 file: String) throws -> [String: SafetensorsEntry] {
        var result: [String: SafetensorsEntry] = [:]
        for (name, r) in raw.sorted(by: { $0.name < $1.name }) {
            guard let dtype = SafetensorsDType(rawValue: r.dtype) else {
                throw SafetensorsError.unknownDType(file: file, tensor: name, dtype: r.dtype)
            }
            guard r.shape.allSatisfy({ $0 >= 0 }) else {
                throw SafetensorsError.malformedEntry(file: file, tensor: name, reason: "negative dimension in shape \(r.shape)")
            }
            guard r.data_offsets.count == 2 else {
                throw SafetensorsError.malformedEntry(file: file, tensor: name,
                                                      reason: "data_offsets has \(r.data_offsets.count) values, expected 2")
            }
            let begin = r.data_offsets[0], end = r.data_offsets[1]
            guard begin >= 0, begin <= end else {
                throw SafetensorsError.malformedEntry(file: file, tensor: name, reason: "data_offsets [\(begin), \(end)) is not a range")
            }
            guard end <= dataBytes else {
                throw SafetensorsError.offsetsOutOfBounds(file: file, tensor: name, begin: begin, end: end, dataBytes: dataBytes)
            }
            var expected = dtype.byteSize, overflow = false
            for d in r.shape where !overflow { (expected, overflow) = expected.multipliedReportingOverflow(by: d) }
            guard !overflow else {
                throw SafetensorsError.malformedEntry(file: file, tensor: name, reason: "shape \(r.shape) overflows")
            }
            guard expected == end - begin else {
                throw SafetensorsError.byteLengthMismatch(file: file, tensor: name, shape: r.shape, dtype: r.dtype,
                                                          expectedBytes: expected, actualBytes: end - begin)
            }
            result[name] = SafetensorsEntry(name: name, dtype: dtype, shape: r.shape, byteRange: begin..<end)
        }
        // No two non-empty ranges may share a byte.
        let ordered = result.values.filter { !$0.byteRange.isEmpty }
            .sorted { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        for (prev, next) in zip(ordered, ordered.dropFirst()) where next.byteRange.lowerBound < prev.byteRange.upperBound {
            throw SafetensorsError.overlappingTensors(file: file, tensor: next.name, other: prev.name)
        }
        return result
    }
}
