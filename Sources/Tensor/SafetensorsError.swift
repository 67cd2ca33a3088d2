import Foundation

/// Errors from reading a `.safetensors` file. Each names the file and, where there is one,
/// the tensor, with the expected and the actual value.
public enum SafetensorsError: LocalizedError, Equatable, Sendable {
    /// The file cannot be opened or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than the 8-byte header length.
    case truncatedHeader(file: String, fileBytes: Int)
    /// The declared header length exceeds the sanity limit.
    case headerTooLarge(file: String, headerBytes: UInt64, limit: Int)
    /// The declared header runs past the end of the file.
    case headerPastEnd(file: String, headerBytes: UInt64, available: Int)
    /// The header is not valid JSON of the expected form.
    case malformedHeader(file: String, reason: String)
    /// One tensor's entry is malformed (missing field, negative dimension, bad offsets…).
    case malformedEntry(file: String, tensor: String, reason: String)
    /// A dtype string this reader does not know.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A tensor's byte range lies (partly) outside the data section.
    case offsetsOutOfBounds(file: String, tensor: String, begin: Int, end: Int, dataBytes: Int)
    /// A tensor's byte length differs from `shape product × dtype size`.
    case byteLengthMismatch(file: String, tensor: String, shape: [Int], dtype: String, expectedBytes: Int, actualBytes: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(file: String, tensor: String, other: String)
    /// The requested tensor is not in the file.
    case missingTensor(file: String, tensor: String)
    /// The tensor exists but its dtype cannot be converted to float32.
    case unsupportedDType(file: String, tensor: String, dtype: String, supported: [String])
    /// The tensor's shape is not the one the caller expects.
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])

    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(file, reason):
            return "cannot open \(file): \(reason)"
        case let .truncatedHeader(file, bytes):
            return "\(file): truncated safetensors file, \(bytes) bytes (expected at least 8 for the header length)"
        case let .headerTooLarge(file, header, limit):
            return "\(file): safetensors header declares \(header) bytes, more than the limit of \(limit)"
        case let .headerPastEnd(file, header, available):
            return "\(file): safetensors header declares \(header) bytes but only \(available) follow the length field"
        case let .malformedHeader(file, reason):
            return "\(file): malformed safetensors header: \(reason)"
        case let .malformedEntry(file, tensor, reason):
            return "\(file): tensor '\(tensor)': \(reason)"
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case let .offsetsOutOfBounds(file, tensor, begin, end, dataBytes):
            return "\(file): tensor '\(tensor)' data_offsets [\(begin), \(end)) outside the data section of \(dataBytes) bytes"
        case let .byteLengthMismatch(file, tensor, shape, dtype, expected, actual):
            return "\(file): tensor '\(tensor)' shape \(shape) × \(dtype) needs \(expected) bytes, data_offsets give \(actual)"
        case let .overlappingTensors(file, tensor, other):
            return "\(file): tensors '\(other)' and '\(tensor)' overlap"
        case let .missingTensor(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .unsupportedDType(file, tensor, dtype, supported):
            return "\(file): tensor '\(tensor)' has dtype \(dtype); only \(supported.joined(separator: ", ")) convert to float32"
        case let .shapeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        }
    }
}
