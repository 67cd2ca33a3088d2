import Foundation
import Generator

/// The state file of one stage, `runs/NAME/state/STAGE.json`: the hash of the stage's settings
/// (its own configuration plus the hashes of the stages it reads), whether it finished, and its
/// time. A rerun skips a finished stage with the same hash; a different hash reruns it (and,
/// since their hashes include it, every stage after it).
public struct StageState: Codable, Sendable, Equatable {
    public var stage: String
    public var hash: String
    /// `running` (started, maybe interrupted) or `done`.
    public var status: String
    /// Wall-clock seconds over every attempt of this hash (a resumed stage adds to it).
    public var seconds: Double
    public var finishedAt: String?

    /// The hex SHA-256 (first 16 digits) of `parts` joined by newlines.
    public static func hash(_ parts: [String]) -> String {
        var h = SHA256()
        h.update(Data(parts.joined(separator: "\n").utf8))
        return String(h.finalizeHex().prefix(16))
    }

    /// A value's canonical JSON (sorted keys), to hash a configuration section.
    public static func canonical<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: e.encode(value), as: UTF8.self)) ?? ""
    }
}

/// Reads and writes the state files of a run folder.
struct StateFiles {
    let directory: URL

    func url(_ stage: String) -> URL { directory.appendingPathComponent("\(stage).json") }

    func load(_ stage: String) -> StageState? {
        guard let data = FileManager.default.contents(atPath: url(stage).path) else { return nil }
        return try? JSONDecoder().decode(StageState.self, from: data)
    }

    func save(_ state: StageState) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(state).write(to: url(state.stage), options: .atomic)
    }
}
