import Foundation

/// Everything that can go wrong reading a GGUF file, its metadata or its tensors.
///
/// Payloads name the file, key or tensor and the expected vs actual value, in the manner of
/// ggml's `gguf.cpp`: a hostile or truncated file gives one of these, never a crash or a huge
/// allocation.
public enum GGUFError: LocalizedError, Equatable, Sendable {
    // MARK: Opening
    case cannotOpen(path: String, reason: String)
    case badMagic(path: String, found: UInt32)
    case unsupportedVersion(path: String, version: UInt32)

    // MARK: Structure (offsets are byte offsets into the file)
    /// A read of `needed` bytes for `what` at `offset` would pass the end of the file.
    case truncated(path: String, what: String, offset: Int, needed: UInt64, available: Int)
    /// A count (tensors, keys, array elements) that cannot fit in the bytes left.
    case countTooLarge(path: String, what: String, count: UInt64, bytesLeft: Int)
    case invalidValueType(path: String, key: String, typeID: UInt32)
    case arrayNestingTooDeep(path: String, key: String, maxDepth: Int)
    case duplicateKey(path: String, key: String)
    case invalidAlignment(path: String, value: String)

    // MARK: Tensor infos
    case duplicateTensor(path: String, tensor: String)
    case tooManyDimensions(path: String, tensor: String, count: UInt32, max: Int)
    case invalidDimension(path: String, tensor: String, index: Int, value: Int64)
    case elementCountOverflow(path: String, tensor: String, dims: [Int64])
    case unknownTensorType(path: String, tensor: String, typeID: UInt32)
    case rowNotBlockMultiple(path: String, tensor: String, type: String, rowLength: Int, blockElements: Int)
    case misalignedTensorOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    case tensorDataOutOfBounds(path: String, tensor: String, offset: UInt64, byteCount: Int, dataBytes: Int)
    case overlappingTensors(path: String, first: String, second: String)

    // MARK: Lookups
    case metadataKeyMissing(key: String)
    case metadataTypeMismatch(key: String, expected: String, actual: String)
    case tensorNotFound(name: String)

    // MARK: Dequantization
    case unsupportedTensorType(tensor: String, type: String)
    case rowOutOfRange(tensor: String, rows: Range<Int>, rowCount: Int)
    case bufferSizeMismatch(tensor: String, expectedElements: Int, actualElements: Int)

    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(path, reason):
            return "\(path): cannot open GGUF file: \(reason)"
        case let .badMagic(path, found):
            return "\(path): not a GGUF file (magic 0x\(String(found, radix: 16)), expected 0x46554747 \"GGUF\")"
        case let .unsupportedVersion(path, version):
            return "\(path): unsupported GGUF version \(version) (expected 2 or 3)"
        case let .truncated(path, what, offset, needed, available):
            return "\(path): truncated reading \(what) at byte \(offset): need \(needed) bytes, \(available) left"
        case let .countTooLarge(path, what, count, bytesLeft):
            return "\(path): \(what) count \(count) cannot fit in the \(bytesLeft) bytes left"
        case let .invalidValueType(path, key, typeID):
            return "\(path): key '\(key)' has invalid value type \(typeID) (expected 0...12)"
        case let .arrayNestingTooDeep(path, key, maxDepth):
            return "\(path): key '\(key)' nests arrays deeper than \(maxDepth)"
        case let .duplicateKey(path, key):
            return "\(path): duplicate metadata key '\(key)'"
        case let .invalidAlignment(path, value):
            return "\(path): general.alignment \(value) is not a power of two > 0 (uint32)"
        case let .duplicateTensor(path, tensor):
            return "\(path): duplicate tensor '\(tensor)'"
        case let .tooManyDimensions(path, tensor, count, max):
            return "\(path): tensor '\(tensor)' has \(count) dimensions, at most \(max) allowed"
        case let .invalidDimension(path, tensor, index, value):
            return "\(path): tensor '\(tensor)' dimension \(index) is \(value), expected >= 0"
        case let .elementCountOverflow(path, tensor, dims):
            return "\(path): tensor '\(tensor)' dims \(dims) overflow the element count"
        case let .unknownTensorType(path, tensor, typeID):
            return "\(path): tensor '\(tensor)' has unknown ggml type id \(typeID)"
        case let .rowNotBlockMultiple(path, tensor, type, rowLength, blockElements):
            return "\(path): tensor '\(tensor)' of type \(type) has row length \(rowLength), "
                + "not a multiple of the block size \(blockElements)"
        case let .misalignedTensorOffset(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)' offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .tensorDataOutOfBounds(path, tensor, offset, byteCount, dataBytes):
            return "\(path): tensor '\(tensor)' data [\(offset), +\(byteCount)) passes the end of the "
                + "\(dataBytes)-byte data section"
        case let .overlappingTensors(path, first, second):
            return "\(path): tensors '\(first)' and '\(second)' overlap"
        case let .metadataKeyMissing(key):
            return "GGUF metadata key '\(key)' is missing"
        case let .metadataTypeMismatch(key, expected, actual):
            return "GGUF metadata key '\(key)' is \(actual), expected \(expected)"
        case let .tensorNotFound(name):
            return "GGUF tensor '\(name)' not found"
        case let .unsupportedTensorType(tensor, type):
            return "tensor '\(tensor)': dequantization of type \(type) is not supported"
        case let .rowOutOfRange(tensor, rows, rowCount):
            return "tensor '\(tensor)': rows \(rows) outside 0..<\(rowCount)"
        case let .bufferSizeMismatch(tensor, expected, actual):
            return "tensor '\(tensor)': destination holds \(actual) floats, expected \(expected)"
        }
    }
}
