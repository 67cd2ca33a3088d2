import Foundation

/// Errors of the experiment runner; each names the file, key or stage.
public enum ExperimentError: Error, LocalizedError, Equatable {
    /// A configuration value is wrong: `key` is its path, e.g. `tune.steps` or `data[0].recipe`.
    case badConfig(file: String, key: String, detail: String)
    /// A file the configuration names does not exist (`key` says where it was named).
    case missingFile(path: String, key: String?)
    /// A stage failed: `stage` is its name (`data-mined`, `tune`, `eval`…).
    case stageFailed(stage: String, detail: String)
    /// The caller asked to stop (Ctrl-C); the stage keeps what it finished.
    case interrupted(stage: String)

    public var errorDescription: String? {
        switch self {
        case let .badConfig(file, key, detail): return key.isEmpty ? "\(file): \(detail)" : "\(file): key '\(key)': \(detail)"
        case let .missingFile(path, key): return "no such file: \(path)" + (key.map { " (named by \($0))" } ?? "")
        case let .stageFailed(stage, detail): return "stage \(stage) failed: \(detail)"
        case let .interrupted(stage): return "interrupted during stage \(stage); rerun the same command to resume"
        }
    }
}
