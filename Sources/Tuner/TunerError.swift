import Foundation

/// Everything that can go wrong in the tuner, with the file, line, tensor or key involved.
public enum TunerError: LocalizedError, Equatable, Sendable {
    /// The model file lacks a key or tensor the trainer needs, or holds an unusable value.
    case invalidModel(path: String, detail: String)
    /// A dataset line is empty, not JSON, or lacks the expected fields.
    case malformedData(path: String, line: Int, detail: String)
    /// The dataset has no usable example.
    case emptyDataset(path: String, detail: String)
    /// A configuration value is out of range.
    case invalidOption(name: String, value: String, expected: String)
    /// The loss became NaN/infinite or exploded; the last good checkpoint is kept.
    case divergedLoss(step: Int, loss: Float, lastCheckpoint: String?)
    /// A checkpoint or adapter file is missing, truncated or does not match the model.
    case badCheckpoint(path: String, detail: String)
    /// Writing a file failed.
    case writeFailed(path: String, detail: String)

    public var errorDescription: String? {
        switch self {
        case let .invalidModel(path, detail): return "\(path): \(detail)"
        case let .malformedData(path, line, detail): return "\(path):\(line): \(detail)"
        case let .emptyDataset(path, detail): return "\(path): no usable training example (\(detail))"
        case let .invalidOption(name, value, expected): return "invalid \(name) '\(value)': expected \(expected)"
        case let .divergedLoss(step, loss, last):
            return "training diverged at step \(step) (loss \(loss)); "
                + (last.map { "last good checkpoint kept at \($0)" } ?? "no checkpoint was written yet")
        case let .badCheckpoint(path, detail): return "\(path): \(detail)"
        case let .writeFailed(path, detail): return "cannot write \(path): \(detail)"
        }
    }
}
