#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A GGUF file (versions 2 and 3), memory-mapped read-only for as long as this object lives.
///
/// Layout (all little-endian):
/// ```
/// magic "GGUF" (u32) | version (u32) | tensor count (u64) | key/value count (u64)
/// key/values:   key (gguf_string) | value type (u32) | value
/// tensor infos: name (gguf_string) | n_dims (u32) | ne[n_dims] (u64) | type (u32) | offset (u64)
/// padding to `general.alignment` (default 32) | data section (tensor offsets are relative to it)
/// ```
/// Opening validates everything before reading or allocating: each count against the bytes
/// left, each string and array length, each tensor's dims, type, byte size, alignment and
/// bounds. A hostile file gives a `GGUFError`.
public final class GGUFFile: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init and the mapping is read-only.

    public let path: String
    public let version: UInt32
    public let metadata: GGUFMetadata
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    public let fileSize: Int

    private let base: UnsafeRawPointer
    private let tensorIndex: [String: Int]

    public static let magic: UInt32 = 0x4655_4747  // "GGUF" read as a little-endian u32
    public static let defaultAlignment = 32
    /// `GGML_MAX_DIMS`.
    public static let maxDimensions = 4

    /// Maps and parses the file at `path`.
    /// - Throws: `GGUFError` naming the file and what is wrong.
    public init(path: String) throws {
        _ = QuantBlocks.layoutsVerified
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw GGUFError.cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        guard size >= 8 else {
            throw GGUFError.truncated(path: path, what: "header", offset: 0, needed: 8, available: size)
        }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        let base = UnsafeRawPointer(mapping)
        do {
            let parsed = try Self.parse(base: base, size: size, path: path)
            self.path = path
            self.version = parsed.version
            self.metadata = parsed.metadata
            self.tensors = parsed.tensors
            self.alignment = parsed.alignment
            self.dataOffset = parsed.dataOffset
            self.fileSize = size
            self.base = base
            self.tensorIndex = parsed.index
        } catch {
            munmap(mapping, size)
            throw error
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
    }

    // MARK: Lookups

    /// `general.architecture`, e.g. "llama".
    public var architecture: String? { metadata["general.architecture"]?.stringValue }

    public func tensorInfo(named name: String) throws -> GGUFTensorInfo {
        guard let i = tensorIndex[name] else { throw GGUFError.tensorNotFound(name: name) }
        return tensors[i]
    }

    public func tensor(named name: String) throws -> GGUFTensor {
        GGUFTensor(info: try tensorInfo(named: name), file: self)
    }

    public func contains(tensor name: String) -> Bool { tensorIndex[name] != nil }

    /// The bytes of a tensor of this file, valid while this object is alive.
    public func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + dataOffset + info.offset, count: info.byteCount)
    }

    // MARK: Parsing

    /// What `parse` finds; internal so tests can fuzz the parser on in-memory bytes.
    struct Parsed {
        var version: UInt32
        var metadata: GGUFMetadata
        var tensors: [GGUFTensorInfo]
        var index: [String: Int]
        var alignment: Int
        var dataOffset: Int
    }

    /// Parses and validates the `size` bytes at `base` (the mapped file).
    static func parse(base: UnsafeRawPointer, size: Int, path: String) throws -> Parsed {
        var cursor = GGUFCursor(base: base, size: size, path: path)
        let magic = try cursor.read(UInt32.self, "magic")
        guard magic == Self.magic else { throw GGUFError.badMagic(path: path, found: magic) }
        // Version 1 used 32-bit counts and lengths; a big-endian file shows up as a huge version.
        let version = try cursor.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }

        // Minimum bytes per tensor info: name length 8 + n_dims 4 + type 4 + offset 8.
        let tensorCount = try cursor.readCount("tensor", minimumElementBytes: 24)
        // Minimum bytes per key/value: key length 8 + type 4 + a 1-byte value.
        let kvCount = try cursor.readCount("metadata key/value", minimumElementBytes: 13)

        let metadata = try parseMetadata(&cursor, count: kvCount)
        let alignment = try parseAlignment(metadata, path: path)
        let (tensors, index) = try parseTensorInfos(&cursor, count: tensorCount, alignment: alignment)

        // The data section starts at the next multiple of the alignment.
        let (padded, overflow) = cursor.offset.addingReportingOverflow(alignment - 1)
        let dataOffset = overflow ? Int.max : padded / alignment * alignment
        let dataBytes = dataOffset <= size ? size - dataOffset : 0
        if !tensors.isEmpty && dataOffset > size {
            throw GGUFError.truncated(path: path, what: "padding before the data section", offset: cursor.offset,
                                      needed: UInt64(dataOffset - cursor.offset), available: cursor.remaining)
        }
        try checkTensorBounds(tensors, dataBytes: dataBytes, path: path)
        return Parsed(version: version, metadata: metadata, tensors: tensors, index: index,
                      alignment: alignment, dataOffset: dataOffset)
    }

    private static func parseMetadata(_ cursor: inout GGUFCursor, count: Int) throws -> GGUFMetadata {
        var keys = [String]()
        var values = [String: GGUFValue]()
        keys.reserveCapacity(count)
        for i in 0..<count {
            let key = try cursor.readString("key of metadata entry \(i)")
            let type = try cursor.readValueType(key: key)
            let value = try cursor.readValue(type, key: key)
            guard values.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateKey(path: cursor.path, key: key)
            }
            keys.append(key)
        }
        return GGUFMetadata(keys: keys, values: values)
    }

    private static func parseAlignment(_ metadata: GGUFMetadata, path: String) throws -> Int {
        guard let value = metadata["general.alignment"] else { return defaultAlignment }
        guard case let .uint32(raw) = value, raw > 0, raw & (raw - 1) == 0 else {
            throw GGUFError.invalidAlignment(path: path, value: "\(value)")
        }
        return Int(raw)
    }

    private static func parseTensorInfos(
        _ cursor: inout GGUFCursor, count: Int, alignment: Int
    ) throws -> ([GGUFTensorInfo], [String: Int]) {
        let path = cursor.path
        var tensors = [GGUFTensorInfo]()
        var index = [String: Int]()
        tensors.reserveCapacity(count)
        for i in 0..<count {
            let name = try cursor.readString("name of tensor \(i)")
            guard index[name] == nil else { throw GGUFError.duplicateTensor(path: path, tensor: name) }
            let nDims = try cursor.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard nDims <= UInt32(maxDimensions) else {
                throw GGUFError.tooManyDimensions(path: path, tensor: name, count: nDims, max: maxDimensions)
            }
            var rawDims = [Int64]()
            for d in 0..<Int(nDims) {
                rawDims.append(try cursor.read(Int64.self, "dimension \(d) of tensor '\(name)'"))
            }
            let typeID = try cursor.read(UInt32.self, "type of tensor '\(name)'")
            let offset = try cursor.read(UInt64.self, "offset of tensor '\(name)'")

            guard let type = GGMLType(rawValue: typeID) else {
                throw GGUFError.unknownTensorType(path: path, tensor: name, typeID: typeID)
            }
            var dims = [Int]()
            var elements = 1
            for (d, value) in rawDims.enumerated() {
                guard value >= 0 else {
                    throw GGUFError.invalidDimension(path: path, tensor: name, index: d, value: value)
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(value))
                guard !overflow else { throw GGUFError.elementCountOverflow(path: path, tensor: name, dims: rawDims) }
                elements = product
                dims.append(Int(value))
            }
            let rowLength = dims.first ?? 1
            guard let rowBytes = type.rowBytes(elements: rowLength) else {
                throw GGUFError.rowNotBlockMultiple(path: path, tensor: name, type: "\(type)",
                                                    rowLength: rowLength, blockElements: type.blockElements)
            }
            let rows = rowLength == 0 ? 0 : elements / rowLength
            let (byteCount, overflow) = rowBytes.multipliedReportingOverflow(by: rows)
            guard !overflow else { throw GGUFError.elementCountOverflow(path: path, tensor: name, dims: rawDims) }
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensorOffset(path: path, tensor: name, offset: offset, alignment: alignment)
            }
            guard offset <= UInt64(Int.max) else {
                throw GGUFError.tensorDataOutOfBounds(path: path, tensor: name, offset: offset,
                                                      byteCount: byteCount, dataBytes: cursor.remaining)
            }
            index[name] = tensors.count
            tensors.append(GGUFTensorInfo(name: name, type: type, dims: dims, offset: Int(offset),
                                          elementCount: elements, byteCount: byteCount))
        }
        return (tensors, index)
    }

    /// Each tensor's bytes must lie inside the data section and not overlap another's.
    private static func checkTensorBounds(_ tensors: [GGUFTensorInfo], dataBytes: Int, path: String) throws {
        for t in tensors {
            let (end, overflow) = t.offset.addingReportingOverflow(t.byteCount)
            guard !overflow, end <= dataBytes else {
                throw GGUFError.tensorDataOutOfBounds(path: path, tensor: t.name, offset: UInt64(t.offset),
                                                      byteCount: t.byteCount, dataBytes: dataBytes)
            }
        }
        let byOffset = tensors.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw GGUFError.overlappingTensors(path: path, first: a.name, second: b.name)
        }
    }
}
