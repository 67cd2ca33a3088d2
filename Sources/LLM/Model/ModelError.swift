import Foundation

/// Everything that can go wrong building or running a model from a GGUF file.
///
/// Payloads name the file, key or tensor and the expected vs actual value.
public enum ModelError: LocalizedError, Equatable, Sendable {
    /// `general.architecture` names a family this runtime does not implement.
    case unsupportedArchitecture(path: String, architecture: String, supported: [String])
    /// A metadata value is present but out of range or inconsistent.
    case invalidMetadata(path: String, key: String, value: String, expected: String)
    case missingTensor(path: String, tensor: String)
    case wrongShape(path: String, tensor: String, expected: [Int], actual: [Int])
    /// A weight is stored in a type we have no kernel for.
    case unsupportedTensorType(path: String, tensor: String, type: String)
    /// A prompt (plus the tokens to generate) does not fit the context window.
    case contextOverflow(tokens: Int, contextLength: Int)
    case emptyPrompt
    case tokenOutOfRange(token: Int, vocabularySize: Int)
    /// The CPU lacks an instruction set the kernels were compiled for.
    case missingCPUFeatures([String])

    public var errorDescription: String? {
        switch self {
        case let .unsupportedArchitecture(path, architecture, supported):
            return "\(path): architecture '\(architecture)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .invalidMetadata(path, key, value, expected):
            return "\(path): metadata '\(key)' = \(value), expected \(expected)"
        case let .missingTensor(path, tensor):
            return "\(path): tensor '\(tensor)' is missing"
        case let .wrongShape(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)' has dims \(actual), expected \(expected)"
        case let .unsupportedTensorType(path, tensor, type):
            return "\(path): tensor '\(tensor)' has type \(type), which has no kernel"
                + " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)"
        case let .contextOverflow(tokens, contextLength):
            return "\(tokens) tokens do not fit the context of \(contextLength) tokens"
                + " (shorten the prompt, lower --max-tokens, or allow truncation)"
        case .emptyPrompt:
            return "the prompt is empty (no tokens to condition on)"
        case let .tokenOutOfRange(token, vocabularySize):
            return "token id \(token) is outside the vocabulary 0..<\(vocabularySize)"
        case let .missingCPUFeatures(features):
            return "this CPU lacks \(features.joined(separator: ", ")), which the LLM kernels are compiled for"
                + " (x86-64 with AVX, FMA and F16C is required)"
        }
    }
}
