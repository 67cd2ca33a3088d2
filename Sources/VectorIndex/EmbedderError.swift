import Foundation
import Tensor

/// Errors from loading or running a text embedder. Each names the file, and the key or tensor,
/// with the expected and the actual value.
public enum EmbedderError: LocalizedError, Equatable, Sendable {
    /// A required model file is absent (run `scripts/setup`).
    case missingFile(file: String)
    /// A model file exists but cannot be read or decoded.
    case unreadableFile(file: String, reason: String)
    /// A configuration value is outside what this implementation supports.
    case unsupportedConfig(file: String, key: String, expected: String, actual: String)
    /// The vocabulary lacks a token the tokenizer needs.
    case missingSpecialToken(file: String, token: String)
    /// A weight tensor is absent from the checkpoint.
    case missingTensor(file: String, tensor: String)
    /// A weight tensor has another shape than the configuration implies.
    case wrongShape(file: String, tensor: String, expected: [Int], actual: [Int])
    /// The checkpoint itself is invalid (bounds, dtype, header…).
    case invalidCheckpoint(SafetensorsError)

    public var errorDescription: String? {
        switch self {
        case let .missingFile(file):
            return "missing model file \(file) (run scripts/setup)"
        case let .unreadableFile(file, reason):
            return "cannot read \(file): \(reason)"
        case let .unsupportedConfig(file, key, expected, actual):
            return "\(file): \(key) is \(actual), expected \(expected)"
        case let .missingSpecialToken(file, token):
            return "\(file): vocabulary has no \(token) token"
        case let .missingTensor(file, tensor):
            return "\(file): no tensor '\(tensor)'"
        case let .wrongShape(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .invalidCheckpoint(error):
            return error.errorDescription
        }
    }
}
