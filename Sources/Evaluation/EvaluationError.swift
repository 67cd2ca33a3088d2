import Foundation

/// Everything that can go wrong reading evaluation data or running an evaluation.
///
/// Payloads name the file and the record (a JSON key or index) or line, the field, and what was
/// expected, so that a user can fix their copy of a benchmark without reading our code.
public enum EvaluationError: LocalizedError, Equatable, Sendable {
    /// A task name that is none of `pubmedqa`, `mcq`, `ner`, `gad`.
    case unknownTask(String)
    /// The file cannot be read.
    case unreadable(file: String, reason: String)
    /// The file is not in the task's format at all (e.g. not JSON, not a JSON object).
    case wrongFormat(file: String, task: String, location: String, reason: String)
    /// A record lacks a field, or the field has the wrong type.
    case missingField(file: String, location: String, field: String, expected: String)
    /// A label that is not one of the task's labels.
    case unknownLabel(file: String, location: String, field: String, label: String, allowed: [String])
    /// The file has no items.
    case emptyFile(file: String, task: String)
    /// k-shot prompts need demonstrations from a separate file.
    case missingDemonstrations(task: String, shots: Int)
    /// Fewer demonstrations are left (after dropping those that are evaluated items) than shots.
    case tooFewDemonstrations(file: String, task: String, available: Int, shots: Int)
    /// The demonstrations file is the evaluated file itself.
    case demonstrationsAreEvaluated(file: String, task: String)
    /// A prompt with its longest option does not fit the model's context.
    case promptTooLong(task: String, item: String, tokens: Int, contextLength: Int)
    /// An item has no label option to score, or an option encodes to no token.
    case invalidOption(task: String, item: String, option: String)

    public var errorDescription: String? {
        switch self {
        case let .unknownTask(name):
            return "unknown task '\(name)' (known: \(EvalTask.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .wrongFormat(file, task, location, reason):
            return "\(file): not \(task) format at \(location): \(reason)"
        case let .missingField(file, location, field, expected):
            return "\(file): \(location): field \"\(field)\" is missing or not \(expected)"
        case let .unknownLabel(file, location, field, label, allowed):
            return "\(file): \(location): field \"\(field)\" has label \(label.debugDescription), expected one of "
                + allowed.joined(separator: ", ")
        case let .emptyFile(file, task):
            return "\(file): no \(task) items in the file"
        case let .missingDemonstrations(task, shots):
            return "\(task): --shots \(shots) needs demonstrations from a separate file (--demos \(task)=FILE)"
        case let .tooFewDemonstrations(file, task, available, shots):
            return "\(file): only \(available) \(task) demonstrations that are not evaluated items, but --shots is \(shots)"
        case let .demonstrationsAreEvaluated(file, task):
            return "\(file): the \(task) demonstrations file is the evaluated file; give a separate file (e.g. a train split)"
        case let .promptTooLong(task, item, tokens, contextLength):
            return "\(task) item \(item): the prompt needs \(tokens) tokens but the model's context is \(contextLength)"
                + " (use fewer --shots)"
        case let .invalidOption(task, item, option):
            return "\(task) item \(item): the label option \(option.debugDescription) encodes to no token"
        }
    }
}
