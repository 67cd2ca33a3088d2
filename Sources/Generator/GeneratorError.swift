import Foundation

/// Everything that can go wrong in the self-specialization pipeline, with the file, line or
/// record that caused it.
public enum GeneratorError: LocalizedError, Equatable {
    /// A seed or benchmark file could not be read.
    case unreadable(file: String, reason: String)
    /// A file with no records.
    case emptyFile(file: String)
    /// A line that is not a JSON object.
    case badJSON(file: String, line: Int, reason: String)
    /// A required field is missing or is not a string.
    case missingField(file: String, line: Int, field: String)
    /// A required field is present but empty.
    case emptyField(file: String, line: Int, field: String)
    /// A benchmark file that does not have the expected layout.
    case wrongFormat(file: String, format: String, record: String, reason: String)
    /// An HTTP endpoint could not be reached or answered with an error.
    case endpoint(url: String, reason: String)
    /// Every request of a generation stage kept failing (`model`: the backend's model identifier).
    case generationFailed(model: String, reason: String)
    /// A request or argument the pipeline cannot honour.
    case invalidSettings(String)
    /// The output directory holds a run with different settings, or is corrupt.
    case resumeConflict(dir: String, reason: String)
    /// The backend named on the command line is not available in this build.
    case backendUnavailable(String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(f, r): return "cannot read \(f): \(r)"
        case let .emptyFile(f): return "\(f): the file has no records"
        case let .badJSON(f, l, r): return "\(f):\(l): not a JSON object (\(r))"
        case let .missingField(f, l, k): return "\(f):\(l): missing string field \"\(k)\""
        case let .emptyField(f, l, k): return "\(f):\(l): field \"\(k)\" is empty"
        case let .wrongFormat(f, fmt, rec, r): return "\(f): not \(fmt) format at \(rec): \(r)"
        case let .endpoint(u, r): return "endpoint \(u): \(r)"
        case let .generationFailed(m, r): return "generation stopped (model \(m)): \(r)"
        case let .invalidSettings(m): return m
        case let .resumeConflict(d, r): return "cannot resume in \(d): \(r)"
        case let .backendUnavailable(m): return m
        }
    }
}
